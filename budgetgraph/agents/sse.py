"""Events for apps: each :mod:`~budgetgraph.agents.events` event as plain JSON with a ``type`` field, and as
server-sent events (``event: <type>`` / ``data: <json>``) for a web endpoint.

The JSON form: ``{"type": "text_delta", "text": ..., "node": ...}``; dollars in ``usage`` are numbers, exact
figures in a ``ledger`` snapshot are strings; a message is ``{"role", "content", "tool_calls", ...}``; a
``final_answer`` carries ``RunResult.to_dict()``. A run that fails sends one ``error`` event, then ends.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from .._redact import redact, redact_tree
from ..errors import AccountExceeded, BudgetExceeded, BudgetgraphError
from ..models.messages import Message, ToolCall
from .events import AgentEvent, FinalAnswer

if TYPE_CHECKING:
    from ..budget.store import Account

__all__ = ["event_to_dict", "event_to_json", "sse_events", "sse_message"]


class Streams(Protocol):
    """What streams events: ``Agent`` (its ``astream``)."""

    def astream(
        self,
        question: str | Sequence[Any] | None = None,
        *,
        thread_id: str | None = None,
        account: Account | None = None,
        decisions: Any = None,
        grant: Any = None,
    ) -> AsyncIterator[AgentEvent]: ...


_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


def event_type(event: AgentEvent) -> str:
    return _SNAKE.sub("_", type(event).__name__).lower()


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Message):
        return {
            "role": value.role,
            "content": value.content,
            "tool_calls": [_plain(c) for c in value.tool_calls],
            "tool_call_id": value.tool_call_id,
            "name": value.name,
            "status": value.status,
        }
    if isinstance(value, ToolCall):
        return {
            "id": value.id,
            "name": value.name,
            "arguments": _plain(value.arguments),
            "error": value.error,
        }
    if hasattr(value, "to_dict"):
        return _plain(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def event_to_dict(event: AgentEvent) -> dict[str, Any]:
    """The event as JSON-able data with its ``type`` (snake case of the class name), every string redacted."""
    if isinstance(event, FinalAnswer):
        return {"type": "final_answer", **redact_tree(_plain(event.result.to_dict()))}
    fields = {f.name: _plain(getattr(event, f.name)) for f in dataclasses.fields(event)}
    return {"type": event_type(event), **redact_tree(fields)}


def event_to_json(event: AgentEvent) -> str:
    return json.dumps(event_to_dict(event), ensure_ascii=False, separators=(",", ":"))


def sse_message(event_name: str, data: Mapping[str, Any]) -> str:
    """One server-sent event: ``event:`` line, one ``data:`` line of JSON (JSON has no raw newlines), blank."""
    return (
        f"event: {event_name}\ndata: {json.dumps(dict(data), ensure_ascii=False, separators=(',', ':'))}\n\n"
    )


def error_data(exc: BaseException) -> dict[str, Any]:
    """What an ``error`` event says: the kind, the message, and for a budget refusal which cap refused."""
    data: dict[str, Any] = {"type": "error", "kind": type(exc).__name__, "message": redact(str(exc))}
    if isinstance(exc, BudgetExceeded):
        data.update(resource=exc.resource, remaining=_plain(exc.remaining), limit=_plain(exc.limit))
    if isinstance(exc, AccountExceeded):
        data.update(account=exc.account, window=exc.window)
    return data


async def sse_events(
    agent: Streams,
    question: str | Sequence[Any] | None = None,
    *,
    thread_id: str | None = None,
    account: Account | None = None,
    decisions: Any = None,
    grant: Any = None,
) -> AsyncIterator[str]:
    """``agent.astream`` as server-sent events, ready for a streaming response body; with ``decisions=`` the
    resumed run of a paused thread (after an ``approval_request`` event), with ``grant=`` the resumed run of
    a thread paused at exhaustion (after a ``budget_request`` event). A budgetgraph error (a refused
    budget, a store or backend failure, a bad decision) becomes one ``error`` event; other exceptions
    propagate."""
    try:
        async for event in agent.astream(
            question, thread_id=thread_id, account=account, decisions=decisions, grant=grant
        ):
            data = event_to_dict(event)
            yield sse_message(data["type"], data)
    except BudgetgraphError as exc:
        yield sse_message("error", error_data(exc))
