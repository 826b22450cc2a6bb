"""What a run produces: the stop reason, the result, the delegate result, and the sub-runner protocol that
delegating planners run their sub-runs through (so that no planner imports the facade)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args

from .._redact import redact
from ..budget.ledger import Ledger, Usage
from ..budget.limits import TOOL_PREFIX
from ..models.langchain_messages import to_langchain
from ..models.messages import Message, ToolCall
from .state import StopInfo
from .structured import dump

if TYPE_CHECKING:
    from ..budget.limits import Budget
    from ..budget.store import Account
    from ..models.base import ChatModel
    from .options import AgentOptions

__all__ = [
    "Delegated",
    "Question",
    "RunResult",
    "Spawn",
    "StopKind",
    "StopReason",
    "SubRunner",
    "stop_info",
]

StopKind = Literal[
    "answered",
    "budget_exhausted",
    "stopped_early",
    "max_turns",
    "context_full",
    "overrun",
    "interrupted",
    "error",
]
STOP_KINDS: tuple[str, ...] = get_args(StopKind)

Question = str | Sequence[Any]
"""A question string, or a message history (``Message`` or LangChain ``BaseMessage``) ending with the user's turn."""


@dataclass(frozen=True, slots=True)
class StopReason:
    """``kind``: answered | budget_exhausted | stopped_early (the budget-aware stop: the agent's own estimate
    of what it still needs did not fit, or it judged the task infeasible) | max_turns | context_full (the
    prompt filled the model's
    context window; the answer call then drops old tool results) | overrun (a backend reported more than was
    reserved: ``resource``, and the message says reserved and reported) | interrupted | error; ``resource``
    names the exhausted budget (a tool by its name, never ``tool:NAME``)."""

    kind: StopKind
    resource: str = ""
    message: str = ""

    def __post_init__(self) -> None:
        if self.kind not in STOP_KINDS:
            raise ValueError(f"stop kind {self.kind!r} is not one of {', '.join(STOP_KINDS)}")
        object.__setattr__(self, "resource", self.resource.removeprefix(TOOL_PREFIX))
        object.__setattr__(self, "message", redact(self.message))

    @classmethod
    def of(cls, info: Mapping[str, Any] | None) -> StopReason:
        """The stop reason a graph state's ``stop`` holds (answered when it holds none)."""
        info = info or {}
        kind = str(info.get("kind") or "answered")
        if kind not in STOP_KINDS:  # never silently an error: a planner that writes another kind is wrong
            raise ValueError(f"stop kind {kind!r} is not one of {', '.join(STOP_KINDS)}")
        return cls(kind, str(info.get("resource") or ""), str(info.get("message") or ""))  # type: ignore[arg-type]

    def info(self) -> StopInfo:
        """The state's form of this stop reason."""
        return {"kind": self.kind, "resource": self.resource, "message": self.message}

    def __str__(self) -> str:
        if self.kind == "budget_exhausted":
            return f"budget_exhausted: {self.resource}"
        if self.kind == "error":
            return f"error: {self.message}"
        if self.kind == "overrun":
            return f"overrun: {self.resource}"
        return self.kind


def stop_info(kind: str, resource: str = "", message: str = "") -> StopInfo:
    """A typed stop in the state's form (a kind that is not a :data:`StopKind` is an error)."""
    return StopReason(kind, resource, message).info()  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a run produced and what it spent."""

    answer: str | None
    stop_reason: StopReason
    usage: Usage
    messages: Sequence[Message]
    ledger: dict[str, Any] = field(default_factory=dict)
    thread_id: str | None = None
    output: Any = None
    """With ``Agent(output_type=...)``: the answer validated as that pydantic model (None if it never was)."""
    output_error: str | None = None
    """Why ``output`` is None: what failed validation, after the one retry."""
    timeline: Sequence[dict[str, Any]] = ()
    """The ledger's journal: every reservation, refusal, commit and refund in order, with what remained."""
    details: dict[str, Any] = field(default_factory=dict)
    """What the planner reports about the run (``consistency``/``majority``: samples drawn, votes, stop)."""
    pending: Sequence[ToolCall] = ()
    """Tool calls awaiting a human decision (stop kind ``interrupted``): resume with
    ``agent.aresume(thread_id, decisions={call.id: "approve" | "reject" | {"action": "edit", ...}})``."""
    budget_request: dict[str, Any] | None = None
    """Where a run paused at exhaustion (``on_exhausted="pause"``, stop kind ``interrupted``): the resource,
    every cap's used / limit / remaining, the agent's last estimate; resume with ``agent.aresume(thread_id,
    grant={...})`` or ``grant="decline"``."""

    @classmethod
    def of(
        cls,
        answer: str | None,
        stop: StopReason,
        ledger: Ledger,
        messages: Sequence[Message],
        **more: Any,
    ) -> RunResult:
        """The one way a result is made: usage, snapshot and timeline all read from the run's live ledger."""
        return cls(
            answer=answer,
            stop_reason=stop,
            usage=ledger.usage(),
            messages=list(messages),
            ledger=ledger.snapshot(),
            timeline=list(ledger.journal),
            **more,
        )

    def to_langchain(self) -> list[Any]:
        """The transcript as LangChain messages (``HumanMessage``, ``AIMessage`` with tool calls, ``ToolMessage``)."""
        return to_langchain(self.messages)

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "stop_reason": str(self.stop_reason),
            "stop": {
                "kind": self.stop_reason.kind,
                "resource": self.stop_reason.resource,
                "message": self.stop_reason.message,
            },
            "usage": self.usage.to_dict(),
            "messages": [
                {
                    "role": m.role,
                    "content": m.content,
                    "tool_call_id": m.tool_call_id,
                    "status": m.status,
                    "tool_calls": [
                        {"id": c.id, "name": c.name, "arguments": dict(c.arguments)} for c in m.tool_calls
                    ],
                }
                for m in self.messages
            ],
            "output": dump(self.output),
            "output_error": self.output_error,
            "pending": [{"id": c.id, "name": c.name, "arguments": dict(c.arguments)} for c in self.pending],
            "budget_request": self.budget_request,
        }


@dataclass(frozen=True, slots=True)
class Delegated:
    """What a delegating planner's one node produced: the answer, the transcript after the question, why it
    stopped, and what it reports (samples, votes, the auction)."""

    answer: str | None
    transcript: Sequence[Message] = ()
    stop: StopReason = StopReason("answered")
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, result: RunResult, details: Mapping[str, Any] | None = None) -> Delegated:
        """A sub-run's result as the delegate's (its transcript without the question)."""
        return cls(result.answer, list(result.messages)[1:], result.stop_reason, dict(details or {}))


class SubRunner(Protocol):
    """What a delegating planner runs: one question on a (child) ledger, to a :class:`RunResult`."""

    async def arun(
        self,
        question: Question,
        *,
        thread_id: str | None = None,
        ledger: Ledger | None = None,
        account: Account | None = None,
    ) -> RunResult: ...


class Spawn(Protocol):
    """Builds a sub-runner like the running agent (its tools, prompts and settings) with another planner, and
    optionally another model, added instructions, a budget of its own and the planner's options; with no
    budget it runs on the child ledger it is given."""

    def __call__(
        self,
        planner: str,
        *,
        model: ChatModel | None = None,
        extra: str | None = None,
        budget: Budget | None = None,
        options: AgentOptions | None = None,
        tools: Sequence[Any] | None = None,
        prices: Any = None,
    ) -> SubRunner: ...
