"""The core of the agent loop: the steps that reserve and commit, and nothing else.

``model`` makes one metered model call with the final-answer reserve held back, ``tools`` admits the calls the
ledger allows (with a checkpointer, ``run_tools`` runs them in a step of its own, so what is in flight is in the
checkpoint before any tool runs: after a crash it counts as spent and is not run again unless its tool is
idempotent), ``answer`` spends the reserve on the final answer, fitted into what is left. Every budget
behaviour is a :class:`~budgetgraph.agents.loop.hooks.Hook` called at fixed points; the core reads no feature
flag.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from langgraph.runtime import Runtime

from ...meter import Admitted, Answered, MeteredRun, ToolOutcome
from ...models.messages import Message, ModelResponse, ToolCall
from ..events import ToolCallFinished, ToolCallStarted
from ..prompts import extract_answer
from ..result import StopReason
from ..runtime import emit, forget, resolve_run, streaming, user_messages
from .acting import act, report, stop_on
from .answer import final_answer, last_text
from .hooks import Batch, Hook, Jump, Reply, ToolsDone, Turn
from .settings import LoopSettings
from .tools import GIVE_UP_AFTER, admit, lost_call, note_of, refused_turns, tool_messages

__all__ = ["NO_ANSWER", "PHASES", "LoopCore", "exhausted_cap", "last_text", "stop_on"]

NO_ANSWER = "the model replied with neither a tool call nor an answer"
PHASES = {"model": "act", "end": "done"}
"""A jump's target as the state's ``phase`` (the other targets are their own phase)."""


def exhausted_cap(run: MeteredRun) -> str:
    """The one exhausted-tool rule: ``tool_calls`` when the total cap is at zero, else the budget key of the
    first tool with nothing left (tools that share a budget key share its cap); "" when none is."""
    if run.ledger.remaining("tool_calls") == 0:
        return "tool_calls"
    for t in run.tools.tools.values():
        left = run.ledger.tool_remaining(t.budget_key)
        if left is not None and left <= 0:
            return t.budget_key
    return ""


def _overrides(hook: Hook, point: str) -> bool:
    return getattr(type(hook), point) is not getattr(Hook, point)


class _RunHooks:
    """One run's hook instances, by the points each acts at (only those that override the point)."""

    def __init__(self, hooks: Sequence[Hook]) -> None:
        mine = [h.for_run() for h in hooks]
        points = ("before_model", "after_model", "before_tools", "after_tools", "at_exhaustion", "context")
        self.at: dict[str, list[Hook]] = {p: [h for h in mine if _overrides(h, p)] for p in points}


class LoopCore:
    """The reserving steps of one loop and the hooks that steer it."""

    def __init__(self, settings: LoopSettings, hooks: Sequence[Hook] = ()) -> None:
        self.settings = settings
        self.hooks = tuple(hooks)
        self.system = Message.system(settings.system_prompt)
        self._runs: weakref.WeakKeyDictionary[MeteredRun, _RunHooks] = weakref.WeakKeyDictionary()

    # -- the run, its hooks and its updates ------------------------------------------------------------
    def run_of(self, state: Any, runtime: Runtime[Any] | None) -> MeteredRun:
        return resolve_run(state, runtime, self.settings.new_run)

    def hooks_of(self, run: MeteredRun) -> _RunHooks:
        found = self._runs.get(run)
        if found is None:
            found = self._runs[run] = _RunHooks(self.hooks)
        return found

    def turn(self, state: Any, runtime: Runtime[Any] | None) -> Turn:
        run = self.run_of(state, runtime)

        async def ask(messages: list[Message], role: str) -> ModelResponse | StopReason:
            return await self.act(run, runtime, "model", messages, [], force=False, role=role)

        return Turn(run, state, user_messages(state), self.settings, runtime, ask, lambda e: emit(runtime, e))

    async def call(self, turn: Turn, hook: Hook, point: str, *args: Any) -> Jump | None:
        """Call one hook at one point, allowed to write the state keys it owns."""
        turn._owner = hook
        try:
            result: Jump | None = await getattr(hook, point)(turn, *args)
            return result
        finally:
            turn._owner = None

    def keep(self, run: MeteredRun, update: dict[str, Any], exhaustion: bool = True) -> dict[str, Any]:
        """Every update carries the run id and the ledger snapshot (what a checkpoint resumes from). Where it
        would answer because a budget ran out, the ``at_exhaustion`` hooks may send it elsewhere (a pause)."""
        stopped = update.get("stop") or {}
        if exhaustion and update.get("phase") == "answer" and stopped.get("kind") == "budget_exhausted":
            for hook in self.hooks_of(run).at["at_exhaustion"]:
                if (jump := hook.at_exhaustion(run, StopReason.of(stopped))) is not None:
                    update["phase"] = PHASES.get(jump.to, jump.to)
                    break
        update["run_id"] = run.id
        update["ledger"] = run.ledger.snapshot()
        if update.get("phase") == "done":
            forget(run)
        return update

    def finish(self, turn: Turn, jump: Jump, reply: Reply | None = None, before: int = 0) -> dict[str, Any]:
        """The step's update for where it goes next: the messages kept (around the reply), the turn, the
        hooks' state keys, the kept answer, the phase and the stop."""
        update = dict(turn.update)
        messages = list(turn.kept)
        if reply is not None:
            messages = [*turn.kept[:before], reply.message, *turn.kept[before:]]
            update["turns"] = turn.turns + 1
        if messages:
            update["messages"] = messages
        if turn.answer:
            update["answer"] = turn.answer
        if jump.to == "end" and jump.answer is not None:
            update["answer"] = jump.answer
        update["phase"] = PHASES.get(jump.to, jump.to)
        if jump.stop is not None:
            update["stop"] = jump.stop.info()
        elif jump.to == "model":
            update["stop"] = None
        return self.keep(turn.run, update)

    # -- the model step --------------------------------------------------------------------------------
    async def model_node(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any]:
        turn = self.turn(state, runtime)
        hooks = self.hooks_of(turn.run).at
        if (early := self.cannot_act(turn)) is not None:
            return self.finish(turn, early)
        for hook in hooks["before_model"]:
            if (jump := await self.call(turn, hook, "before_model")) is not None:
                return self.finish(turn, jump)
        before = len(turn.kept)
        messages = [self.system, *turn.history, *turn.kept]
        for hook in hooks["context"]:
            messages = hook.context(turn, messages)
        schemas = [t.schema for t in turn.tools]
        response = await self.act(
            turn.run, runtime, "model", turn.prompt(messages), schemas, force=turn.force
        )
        if isinstance(response, StopReason):
            return self.finish(turn, self.failed(turn, response))
        reply = Reply(response.message, extract_answer(response.message.content), response)
        for hook in hooks["after_model"]:
            if (jump := await self.call(turn, hook, "after_model", reply)) is not None:
                return self.finish(turn, jump, reply, before)
        return self.finish(turn, self.next_after(reply), reply, before)

    def cannot_act(self, turn: Turn) -> Jump | None:
        """The core's bounds: ``max_turns``, and no capped tool left to call (the one exhausted-tool rule)."""
        if turn.turns >= self.settings.max_turns:
            return Jump.to_answer("max_turns", f"reached max_turns={self.settings.max_turns}")
        if self.settings.tools and not turn.tools:
            key = self.exhausted_tool(turn.run)
            return Jump.to_answer("budget_exhausted", f"The {key} budget is exhausted.", key)
        return None

    def failed(self, turn: Turn, why: StopReason) -> Jump:
        """A model call that could not be made: an error, an overrun or the clock ends the run with the best
        answer so far; a budget goes to the final answer."""
        if why.kind in ("error", "overrun") or why.resource == "seconds":
            answer = None if why.kind == "error" else turn.state.get("answer") or last_text(turn.history)
            return Jump("end", why, answer)
        return Jump("answer", why)

    @staticmethod
    def next_after(reply: Reply) -> Jump:
        if reply.calls:
            return Jump("tools")
        if not reply.answer:
            return Jump.to_answer("answered", NO_ANSWER)
        return Jump.to_end(StopReason("answered"), reply.answer)

    @staticmethod
    def exhausted_tool(run: MeteredRun) -> str:
        return exhausted_cap(run) or "tool_calls"

    async def act(
        self,
        run: MeteredRun,
        runtime: Runtime[Any] | None,
        node: str,
        messages: list[Message],
        schemas: list[Any],
        *,
        force: bool,
        role: str = "act",
    ) -> ModelResponse | StopReason:
        """One acting model call with the answer reserve held back; why it could not run or failed."""
        return await act(self.settings, run, runtime, node, messages, schemas, force=force, role=role)

    def report(self, runtime: Runtime[Any] | None, exc: Exception) -> None:
        report(self.settings, runtime, exc)

    # -- the tool steps --------------------------------------------------------------------------------
    async def tools_node(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any]:
        turn = self.turn(state, runtime)
        batch = Batch(list(turn.history[-1].tool_calls))
        for hook in self.hooks_of(turn.run).at["before_tools"]:  # an approval may pause the run here
            await self.call(turn, hook, "before_tools", batch)
        texts, admitted, refused = admit(turn.run, batch)
        if self.settings.durable:  # the checkpoint after this step holds what is in flight
            notes = {
                c.id: {"text": t.text, "status": t.status}
                for c, t in zip(batch.calls, texts, strict=True)
                if t
            }
            inflight = [a.record() for a in admitted]
            update = {
                "phase": "run_tools",
                "inflight": inflight,
                "notes": notes,
                "refused": refused,
                **turn.update,
            }
            return self.keep(turn.run, update)
        return await self.finish_tools(turn, batch.calls, texts, admitted, refused)

    async def run_tools_node(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any]:
        turn = self.turn(state, runtime)
        run = turn.run
        calls = list(turn.history[-1].tool_calls)
        notes = dict(state.get("notes") or {})
        texts: list[Answered | None] = [note_of(notes.get(c.id)) for c in calls]
        admitted: list[Admitted] = []
        lost: set[str] = set()
        for record in state.get("inflight") or []:
            found = run.pending.get(record["id"])
            if found is not None:
                admitted.append(found)
            else:  # in flight when the run stopped (a crash): counted as spent in the snapshot
                lost.add(record["id"])
        for i, call in enumerate(calls):
            if call.id in lost:
                texts[i] = await lost_call(run, call)
        update = await self.finish_tools(turn, calls, texts, admitted, list(state.get("refused") or []))
        update.update(inflight=[], notes={}, refused=[])
        return update

    async def finish_tools(
        self,
        turn: Turn,
        calls: Sequence[ToolCall],
        texts: list[Answered | None],
        admitted: list[Admitted],
        refused: list[str],
    ) -> dict[str, Any]:
        run, runtime = turn.run, turn.runtime
        outcomes = await asyncio.gather(*(self.run_one(run, runtime, a) for a in admitted))
        fatal: Jump | None = None
        spent: dict[str, int] = {}
        for a, outcome in zip(admitted, outcomes, strict=True):
            texts[[c.id for c in calls].index(a.call.id)] = Answered(outcome.text, outcome.status)
            if outcome.charged:
                spent[a.tool.budget_key] = spent.get(a.tool.budget_key, 0) + a.units
            if (
                outcome.overrun is not None
            ):  # a tool billed more than its bound (or a cost that cannot be true)
                self.report(runtime, outcome.overrun)
                fatal = fatal or Jump("end", stop_on(outcome.overrun))
            elif outcome.deadline and fatal is None:
                fatal = Jump("end", StopReason("budget_exhausted", "seconds", "The time budget is spent."))
        done = ToolsDone(tuple(calls), tool_messages(calls, texts), spent, refused)
        jump: Jump | None = None
        for hook in self.hooks_of(run).at["after_tools"]:  # every hook adds its text; the first jump wins
            found = await self.call(turn, hook, "after_tools", done)
            jump = jump or found
        turn.update.update(refused_turns=0)
        turn.kept.extend(done.messages)
        return self.finish(turn, fatal or self.clock(run) or jump or self.after_tools(turn, done))

    @staticmethod
    def clock(run: MeteredRun) -> Jump | None:
        if run.ledger.available("seconds") == 0:
            return Jump("end", StopReason("budget_exhausted", "seconds", "The time budget is spent."))
        return None

    def after_tools(self, turn: Turn, done: ToolsDone) -> Jump:
        """No capped tool left: the answer. A second turn in a row whose every call was refused: the model is
        not using what is left, so it answers; after one, it is told why and goes on."""
        if self.settings.tools and not turn.run.tools.available():
            key = self.exhausted_tool(turn.run)
            return Jump.to_answer("budget_exhausted", f"The {key} budget is exhausted.", key)
        if done.all_refused:
            count = refused_turns(int(turn.state.get("refused_turns", 0)), True)
            if count >= GIVE_UP_AFTER:
                return Jump.to_answer("budget_exhausted", "every tool call was refused", done.refused[0])
            turn.update["refused_turns"] = count
        return Jump.to_model()

    async def run_one(self, run: MeteredRun, runtime: Runtime[Any] | None, a: Admitted) -> ToolOutcome:
        live = streaming(runtime)
        if live:
            emit(
                runtime,
                ToolCallStarted(a.tool.name, a.call.id, dict(a.call.arguments), a.units, float(a.cost)),
            )
        try:
            outcome = await run.tools.run(a)
        finally:
            run.pending.pop(a.call.id, None)
        if live:
            units, cost = (a.units, float(outcome.cost)) if outcome.charged else (0, 0.0)
            emit(
                runtime,
                ToolCallFinished(a.tool.name, a.call.id, units, cost, outcome.charged, outcome.seconds),
            )
        return outcome

    # -- the answer step ------------------------------------------------------------------------------
    async def answer_node(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any]:
        run = self.run_of(state, runtime)
        return self.keep(run, await self.answer(run, state, runtime))

    async def answer(
        self, run: MeteredRun, state: Mapping[str, Any], runtime: Runtime[Any] | None
    ) -> dict[str, Any]:
        """The final-answer call on the held reserve (see :func:`final_answer`)."""
        return await final_answer(self.settings, self.system, run, state, runtime)
