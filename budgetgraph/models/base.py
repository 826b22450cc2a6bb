"""The one async protocol every model backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ..budget.prices import ModelPrice
from .messages import Message, ModelResponse, ModelSettings, ToolSchema

__all__ = ["ChatModel", "estimate_tokens"]


@runtime_checkable
class ChatModel(Protocol):
    """A chat model: messages + tool schemas + settings in, one assistant message + usage out.

    ``price`` is the backend's own price (local models are free); ``None`` means "look it up by name".
    """

    name: str
    price: ModelPrice | None

    async def request(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema], settings: ModelSettings
    ) -> ModelResponse: ...

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSchema]) -> int:
        """Input tokens of a request, counted before it is sent (exact where the backend has a tokenizer)."""
        ...


def estimate_tokens(messages: Sequence[Message], tools: Sequence[ToolSchema]) -> int:
    """A deliberately high estimate (3 characters a token plus framing) for backends without a tokenizer."""
    chars = sum(
        len(m.content) + sum(len(str(c.arguments)) + len(c.name) for c in m.tool_calls) for m in messages
    )
    chars += sum(len(t.name) + len(t.description) + len(str(t.parameters)) for t in tools)
    return chars // 3 + 8 * len(messages) + 16 * len(tools) + 8
