"""The one async protocol every model backend implements."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Protocol, runtime_checkable

from ..budget.prices import ModelPrice
from .messages import Message, ModelResponse, ModelSettings, ToolSchema

__all__ = ["ChatModel", "emit_delta", "estimate_tokens", "text_sink"]

text_sink: ContextVar[Callable[[str], None] | None] = ContextVar("budgetgraph_text_sink", default=None)
"""Where a streaming backend sends text deltas; set by the agent loop while ``Agent.astream`` runs."""


def emit_delta(text: str) -> None:
    """Pass a text delta to whoever streams this run (a no-op when nobody does)."""
    sink = text_sink.get()
    if sink is not None and text:
        sink(text)


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
