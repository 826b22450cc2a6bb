"""Typed events of ``Agent.astream``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..models.messages import Message, ToolCall

if TYPE_CHECKING:
    from ..budget.ledger import Ledger
    from .result import RunResult

__all__ = [
    "AgentEvent",
    "ApprovalRequest",
    "BudgetGrant",
    "BudgetOverrun",
    "BudgetRequest",
    "BudgetUpdate",
    "FinalAnswer",
    "ModelTurn",
    "TextDelta",
    "ToolCallFinished",
    "ToolCallStarted",
    "ToolResult",
    "VerifierDecision",
    "events_of",
]


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the model's reply as it is generated, without the agent's markup (every built-in backend
    streams: local, OpenAI-compatible, Anthropic)."""

    text: str
    node: str = "model"


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    """A tool call was admitted by the ledger and starts now; ``units`` and ``cost`` are what it reserved."""

    name: str
    call_id: str
    arguments: dict[str, Any]
    units: int
    cost: float


@dataclass(frozen=True, slots=True)
class ToolCallFinished:
    """A tool call ended; ``charged`` is False when it was refunded (the tool refused before doing work)."""

    name: str
    call_id: str
    units: int
    cost: float
    charged: bool
    seconds: float


@dataclass(frozen=True, slots=True)
class VerifierDecision:
    """BATS: the verifier's decision on a proposed answer."""

    answer: str
    decision: str
    summary: str


@dataclass(frozen=True, slots=True)
class ModelTurn:
    """The model replied (text and/or tool calls); ``node`` is "model" or "answer"."""

    message: Message
    node: str


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A tool call finished, was refused, or was malformed: ``status`` says which (``ok``, ``empty``, ``error``,
    ``refused``), the content why."""

    name: str
    call: ToolCall | None
    content: str
    status: str | None = None


@dataclass(frozen=True, slots=True)
class BudgetUpdate:
    """The budget after a batch of tool calls: ``resources`` has used, limit, remaining and regime per capped
    resource (an account's caps too); ``ledger`` is the exact snapshot (dollars as strings)."""

    ledger: dict[str, Any]
    regime: str
    resources: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BudgetGrant:
    """A cap was raised mid-run: ``amount`` more of ``resource`` (now ``limit``), granted ``by`` for ``reason``."""

    resource: str
    amount: int | float | str
    limit: int | float | str
    by: str
    reason: str


@dataclass(frozen=True, slots=True)
class BudgetOverrun:
    """A backend reported more than its call reserved: the truth was charged and the run stops now."""

    resource: str
    reserved: str
    reported: str
    model: str


@dataclass(frozen=True, slots=True)
class BudgetRequest:
    """The run paused where a budget ran out (``Agent(on_exhausted="pause")``): ``request`` names the resource,
    every cap's used / limit / remaining and the agent's last estimate; an app resumes the thread with
    ``grant={"search": 2}`` (more of each) or ``grant="decline"`` (the run answers with what it has)."""

    thread_id: str
    request: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """The run paused before these tool calls: an app shows them and resumes the thread with a decision per
    call (``agent.astream(thread_id=..., decisions={call.id: "approve" | "reject" | {...}})``)."""

    thread_id: str
    calls: tuple[ToolCall, ...]


@dataclass(frozen=True, slots=True)
class FinalAnswer:
    """The run ended: its answer (without markup), stop reason and spend."""

    result: RunResult


AgentEvent = (
    ApprovalRequest
    | BudgetRequest
    | ModelTurn
    | TextDelta
    | ToolCallStarted
    | ToolCallFinished
    | ToolResult
    | BudgetUpdate
    | BudgetGrant
    | BudgetOverrun
    | VerifierDecision
    | FinalAnswer
)


def events_of(
    chunk: dict[str, Any], final: dict[str, Any], calls: dict[str, Any], ledger: Ledger
) -> list[AgentEvent]:
    """The events of one ``updates`` chunk; ``final`` and ``calls`` are updated as the run's state goes."""
    events: list[AgentEvent] = []
    for node, update in chunk.items():
        if node == "__interrupt__":
            final["__interrupt__"] = update
            continue
        if not isinstance(update, dict):
            continue
        final.update({k: v for k, v in update.items() if k != "messages"})
        final["messages"] = final.get("messages", []) + list(update.get("messages", []))
        for m in update.get("messages", []):
            if m.role == "assistant":
                calls.update({c.id: c for c in m.tool_calls})
                events.append(ModelTurn(message=m, node=node))
            elif m.role == "tool":
                events.append(
                    ToolResult(
                        name=m.name or "",
                        call=calls.get(m.tool_call_id or ""),
                        content=m.content,
                        status=m.status,
                    )
                )
        if "ledger" in update and any(m.role == "tool" for m in update.get("messages", [])):
            events.append(
                BudgetUpdate(ledger=update["ledger"], regime=ledger.regime(), resources=ledger.status())
            )
    return events
