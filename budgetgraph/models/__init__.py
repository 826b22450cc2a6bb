"""Model backends behind one async protocol. Backends with extras are imported lazily."""

from typing import TYPE_CHECKING, Any

from .base import ChatModel, estimate_tokens
from .messages import Message, ModelResponse, ModelSettings, RequestUsage, Role, ToolCall, ToolSchema
from .registry import MODEL_PREFIXES, infer_model
from .scripted import ScriptedModel

if TYPE_CHECKING:
    from .anthropic import AnthropicModel
    from .local import LocalModel
    from .openai import OpenAIModel
    from .vllm import VLLMModel

__all__ = [
    "MODEL_PREFIXES",
    "AnthropicModel",
    "ChatModel",
    "LocalModel",
    "Message",
    "ModelResponse",
    "ModelSettings",
    "OpenAIModel",
    "RequestUsage",
    "Role",
    "ScriptedModel",
    "ToolCall",
    "ToolSchema",
    "VLLMModel",
    "estimate_tokens",
    "infer_model",
]


_LAZY = {
    "AnthropicModel": ".anthropic",
    "LocalModel": ".local",
    "OpenAIModel": ".openai",
    "VLLMModel": ".vllm",
}
"""Backends imported when first named, so ``import budgetgraph`` needs none of their extras."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
