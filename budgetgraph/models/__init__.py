"""Model backends behind one async protocol. Backends with extras are imported lazily."""

from typing import TYPE_CHECKING, Any

from .base import ChatModel, estimate_tokens
from .messages import Message, ModelResponse, ModelSettings, RequestUsage, Role, ToolCall, ToolSchema
from .registry import infer_model
from .scripted import ScriptedModel

if TYPE_CHECKING:
    from .local import LocalModel
    from .openai import OpenAIModel

__all__ = [
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
    "estimate_tokens",
    "infer_model",
]


def __getattr__(name: str) -> Any:
    if name == "LocalModel":
        from .local import LocalModel

        return LocalModel
    if name == "OpenAIModel":
        from .openai import OpenAIModel

        return OpenAIModel
    raise AttributeError(name)
