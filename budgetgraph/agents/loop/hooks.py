"""The hook protocol of the agent loop: every budget behaviour is a :class:`Hook` at a fixed point of the core.

The core reserves and commits (one metered model call, the tool calls it admits, the final answer); a hook
sees the run at five points and may add messages, narrow the tools offered, force a tool call, set the state
keys it owns, or :class:`Jump` somewhere else with a typed stop:

- ``before_model(turn)``: before the acting model call (add to the prompt, narrow or force the tools).
- ``after_model(turn, reply)``: after it (keep messages, go back to the model, stop early).
- ``before_tools(turn, batch)``: before the calls are admitted (hold calls back, limit their units).
- ``after_tools(turn, done)``: after they ran (add text to their results, stop).
- ``at_exhaustion(run, stop)``: where the run would answer because a budget ran out (pause instead).

A hook acts only through :class:`~budgetgraph.meter.MeteredRun` (``turn.run``): no hook can call a model or a
tool around the ledger. Each run gets fresh instances (:meth:`Hook.for_run`); a hook keeps what must survive a
checkpoint in the state keys it declares (``state``), and writes only those.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ...errors import ConfigError
from ...models.messages import Message, ModelResponse, ToolCall
from ..result import StopKind, StopReason

if TYPE_CHECKING:
    from langgraph.runtime import Runtime

    from ...meter import MeteredRun
    from ...tools.base import Tool
    from .settings import LoopSettings

__all__ = ["Batch", "Core", "Hook", "Jump", "Node", "Reply", "ToolsDone", "Turn"]

Node = Callable[[Any, "Runtime[Any]"], Awaitable[dict[str, Any]]]
"""A graph node a hook adds (the pause of ``on_exhausted="pause"``): state in, the update out."""


class Core(Protocol):
    """What a node a hook adds may use of the loop's core: the run of a step, and the update that carries the
    run's ledger to the checkpoint."""

    def run_of(self, state: Any, runtime: Runtime[Any] | None) -> MeteredRun: ...

    def keep(self, run: MeteredRun, update: dict[str, Any], exhaustion: bool = True) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Jump:
    """Where the loop goes instead of its own next step: ``model`` (another turn), ``answer`` (the final-answer
    call, on the held reserve), ``end`` (done, with ``answer``), or a node a hook added; ``stop`` says why."""

    to: str
    stop: StopReason | None = None
    answer: str | None = None

    @classmethod
    def to_answer(cls, kind: StopKind, message: str = "", resource: str = "") -> Jump:
        """Stop acting and give the final answer, for this typed reason."""
        return cls("answer", StopReason(kind, resource, message))

    @classmethod
    def to_model(cls) -> Jump:
        """Another turn of the model (after messages the hook kept)."""
        return cls("model")

    @classmethod
    def to_end(cls, stop: StopReason, answer: str | None) -> Jump:
        """The run is over with this answer (no final-answer call)."""
        return cls("end", stop, answer)


@dataclass(slots=True)
class Reply:
    """The acting model call's reply: a hook may replace ``message`` (e.g. drop its tool calls)."""

    message: Message
    answer: str | None
    response: ModelResponse

    @property
    def calls(self) -> tuple[ToolCall, ...]:
        return self.message.tool_calls


@dataclass(slots=True)
class Batch:
    """The tool calls about to be admitted: a hook may hold some back (``skip``: call id -> what the model is
    told) or limit the units a tool may use this turn (``most``: tool name -> units)."""

    calls: list[ToolCall]
    skip: dict[str, str] = field(default_factory=dict)
    most: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class ToolsDone:
    """The turn's tool calls after they ran or were refused: their result ``messages`` (a hook may ``append``
    text to every one), the units each budget key spent, and the resources that refused a call."""

    calls: tuple[ToolCall, ...]
    messages: list[Message]
    spent: dict[str, int]
    refused: list[str]

    @property
    def all_refused(self) -> bool:
        """Every call of the turn was refused by a budget (none ran)."""
        return bool(self.refused) and not self.spent

    def append(self, text: str) -> None:
        """Add ``text`` to each result the model reads next (the budget block, a request for an estimate)."""
        if text:
            self.messages[:] = [replace(m, content=m.content + text) for m in self.messages]


class Turn:
    """One step of the loop as a hook sees it: the run's metering (``run``), the state so far (``state``,
    read-only), the conversation (``history``) and the core's settings; what hooks ask for this step is
    collected here and applied by the core."""

    def __init__(
        self,
        run: MeteredRun,
        state: Mapping[str, Any],
        history: list[Message],
        settings: LoopSettings,
        runtime: Runtime[Any] | None,
        ask: Callable[..., Awaitable[ModelResponse | StopReason]],
        emit: Callable[[Any], None],
    ) -> None:
        self.run = run
        self.state = state
        self.history = history
        self.settings = settings
        self.runtime = runtime
        self.tools: list[Tool] = run.tools.available()
        """The tools offered to this model call (a hook may narrow them)."""
        self.force = False
        """Whether this model call must call a tool."""
        self.kept: list[Message] = []
        self.answer: str | None = None
        self.update: dict[str, Any] = {}
        self._system: list[str] = []
        self._last: list[str] = []
        self._ask = ask
        self._emit = emit
        self._owner: Hook | None = None

    @property
    def turns(self) -> int:
        """Acting model calls the run has made so far."""
        return int(self.state.get("turns", 0))

    def keep(self, message: Message) -> None:
        """Keep ``message`` in the conversation: before the reply when asked before the model call, after it
        when asked after."""
        self.kept.append(message)

    def keep_answer(self, answer: str | None) -> None:
        """The run's best answer so far (what a run that ends before another answer returns)."""
        if answer:
            self.answer = answer

    def add_to_system(self, text: str) -> None:
        """Add ``text`` to this model call's system prompt only (never to the question or the history)."""
        self._system.append(text)

    def add_to_last(self, text: str) -> None:
        """Add ``text`` to the last message of this model call's prompt only (not kept in the history)."""
        self._last.append(text)

    def narrow(self, keep: Callable[[Tool], bool]) -> None:
        """Offer only the tools ``keep`` accepts this turn (all of them when it accepts none)."""
        self.tools = [t for t in self.tools if keep(t)] or self.tools

    def set(self, key: str, value: Any) -> None:
        """Set a state key the calling hook owns (its ``state``); any other key is a programming error."""
        owner = self._owner
        if owner is None or key not in owner.state:
            name = type(owner).__name__ if owner is not None else "the core"
            raise ConfigError(f"hook {name} writes state key {key!r}, which it does not declare in its state")
        self.update[key] = value

    def emit(self, event: Any) -> None:
        """Send a typed event to ``Agent.astream`` (nothing when nobody streams)."""
        self._emit(event)

    async def ask(self, messages: list[Message], role: str = "act") -> ModelResponse | StopReason:
        """One metered model call with these messages and no tools, the answer reserve held back: the reply,
        or why it could not be made."""
        return await self._ask(messages, role)

    def prompt(self, messages: list[Message]) -> list[Message]:
        """``messages`` (the system message first) with what hooks added to the system and the last message."""
        out = list(messages)
        if self._system and out and out[0].role == "system":
            out[0] = replace(out[0], content="\n\n".join([out[0].content, *self._system]))
        if self._last and out:
            out[-1] = replace(out[-1], content="\n\n".join([out[-1].content, *self._last]))
        return out


class Hook:
    """A budget behaviour of the loop. Override the points it acts at; each returns None to let the core go on,
    or a :class:`Jump`. ``state`` maps the state keys it owns to their types (a LangGraph reducer may be given
    with ``Annotated``); ``nodes`` are graph nodes it adds (a jump may go there)."""

    state: ClassVar[Mapping[str, Any]] = {}

    def for_run(self) -> Hook:
        """This hook's instance for one run (a shallow copy: a run's own fields never leak to another)."""
        return copy.copy(self)

    def nodes(self, core: Core) -> Mapping[str, Node]:
        """Graph nodes this hook adds, by name (a jump or a phase may name them)."""
        return {}

    async def before_model(self, turn: Turn) -> Jump | None:
        return None

    async def after_model(self, turn: Turn, reply: Reply) -> Jump | None:
        return None

    async def before_tools(self, turn: Turn, batch: Batch) -> None:
        return None

    async def after_tools(self, turn: Turn, done: ToolsDone) -> Jump | None:
        return None

    def at_exhaustion(self, run: MeteredRun, stop: StopReason) -> Jump | None:
        return None

    def context(self, turn: Turn, messages: list[Message]) -> list[Message]:
        """The acting call's messages (system, history, kept): a planner that assembles its own context
        (BATS's checklist and summary) replaces them here."""
        return messages
