"""The one async protocol every model backend implements, and what a failed request may have cost."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..budget.prices import ModelPrice
from .messages import Message, ModelResponse, ModelSettings, ToolSchema

__all__ = [
    "ChatModel",
    "Failure",
    "emit_delta",
    "estimate_tokens",
    "failure_of",
    "retry_policy",
    "sampling",
    "text_sink",
    "upper_bound_tokens",
]

text_sink: ContextVar[Callable[[str], None] | None] = ContextVar("budgetgraph_text_sink", default=None)
sampling: ContextVar[ModelSettings | None] = ContextVar("budgetgraph_sampling", default=None)
"""Settings every metered model call in this context uses over its own (an evaluation epoch's seed and
temperature); set by the evaluation runner around an episode."""
"""Where a streaming backend sends text deltas; set by the metering layer while ``Agent.astream`` runs."""


def emit_delta(text: str) -> None:
    """Pass a text delta to whoever streams this run (a no-op when nobody does)."""
    sink = text_sink.get()
    if sink is not None and text:
        sink(text)


@runtime_checkable
class ChatModel(Protocol):
    """A chat model: messages + tool schemas + settings in, one assistant message + usage out.

    ``request`` makes exactly one attempt (the metering layer retries, reserving each attempt as a call);
    ``count_tokens`` is exact where the backend has the tokenizer and an upper bound otherwise. ``price`` is
    the backend's own price (local models are free); ``None`` means "look it up by name". Backends may also
    define ``failure(exc) -> Failure``, ``max_attempts`` and ``backoff`` (see :func:`retry_policy`).
    """

    name: str
    price: ModelPrice | None

    async def request(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema], settings: ModelSettings
    ) -> ModelResponse: ...

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSchema]) -> int:
        """Input tokens of a request, counted before it is sent."""
        ...


@dataclass(frozen=True, slots=True)
class Failure:
    """What a failed request means for the budget: ``reached`` (the server saw it: one LLM call),
    ``may_bill`` (the provider may have billed it, e.g. a timeout after the request was sent: charged as
    reserved), and ``retryable`` (rate limits, server errors, timeouts, lost connections)."""

    retryable: bool = False
    reached: bool = False
    may_bill: bool = False


def failure_of(model: object, exc: BaseException) -> Failure:
    """The backend's own classification, or "not retryable, nothing reached the server"."""
    classify = getattr(model, "failure", None)
    return classify(exc) if callable(classify) else Failure()


def retry_policy(model: object) -> tuple[int, float]:
    """``(attempts, backoff seconds)`` of a backend (1 attempt unless it says otherwise)."""
    return max(1, int(getattr(model, "max_attempts", 1) or 1)), float(getattr(model, "backoff", 0.5))


def _text_bytes(messages: Sequence[Message], tools: Sequence[ToolSchema]) -> tuple[int, int]:
    body = 0
    for m in messages:
        body += len(m.content.encode())
        for c in m.tool_calls:
            body += (
                len(c.name.encode()) + len(json.dumps(dict(c.arguments), ensure_ascii=False).encode()) + 16
            )
    schema = sum(
        len(
            json.dumps(
                {"n": t.name, "d": t.description, "p": dict(t.parameters)}, ensure_ascii=False
            ).encode()
        )
        for t in tools
    )
    return body, schema


def upper_bound_tokens(messages: Sequence[Message], tools: Sequence[ToolSchema]) -> int:
    """A proven upper bound on a request's input tokens for any byte-level tokenizer (every token covers at
    least one byte of UTF-8), with room for a chat template's framing: 8 tokens a message, 160 for the
    tool-use preamble and 16 a tool. For backends that cannot count exactly."""
    body, schema = _text_bytes(messages, tools)
    return body + schema + 8 * len(messages) + (160 + 16 * len(tools) if tools else 0) + 8


def estimate_tokens(messages: Sequence[Message], tools: Sequence[ToolSchema]) -> int:
    """A rough count (4 bytes a token) for text whose exact count does not matter (never a reservation)."""
    body, schema = _text_bytes(messages, tools)
    return (body + schema) // 4 + 4 * len(messages) + 1
