"""The LangGraph agent loop: a model node, a tool node and an answer node, every call metered.

The model node acts (one metered model call, with the final-answer reserve held back), the tool node admits
the calls the ledger allows and runs them, the answer node spends the reserve on a last answer. With a
checkpointer the tool node is split in two (``tools`` admits, ``run_tools`` runs) so that what is in flight
is in the checkpoint before any tool runs: after a crash a resumed run counts it as spent and does not run
it again (unless the tool is idempotent).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import var_child_runnable_config
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt

from .. import tracing
from ..budget.allowance import turn_allowance
from ..budget.block import REGIME_POLICY, RegimePolicy, render_budget_block
from ..budget.limits import TOOL_PREFIX, Budget
from ..budget.prices import PriceTable
from ..budget.tool_block import render_tool_block
from ..errors import BudgetExceeded, ConfigError, ModelError, Overrun
from ..meter import MIN_OUTPUT, Admitted, Answered, MeteredRun, ToolOutcome, refusal_text
from ..models.base import ChatModel
from ..models.messages import Message, ModelResponse, ModelSettings, ToolSchema
from ..tools.base import Tool
from .approval import review
from .events import BudgetGrant, BudgetOverrun, TextDelta, ToolCallFinished, ToolCallStarted
from .markup import MarkupStripper
from .need import NEED_LINE, asks_for_more, judge_need, need_example, parse_need
from .nudge import NUDGE, NUDGE_LIMIT, READ_FIRST, READ_MORE
from .pause import budget_request, read_grant
from .prompts import answer_now, extract_answer
from .runtime import RunContext, emit, forget, resolve_run, sink, stop, streaming, user_messages
from .state import AgentState, StopInfo
from .turns import MORE_TURNS, TURN_LIMIT_REACHED, TURN_REMINDER, TurnControl

__all__ = ["GO_ON", "GO_ON_LIMIT", "NO_ANSWER", "AgentLoop", "LoopConfig", "build_graph", "may_go_on"]

NO_ANSWER = "the model replied with neither a tool call nor an answer"
GO_ON = "Go on: make the next call your estimate counts."
"""Sent after a reply that was only an estimate of calls still needed (budget-aware stop); that turn must
call a tool."""
GO_ON_LIMIT = 1
"""Need-only replies a run answers with :data:`GO_ON`; a later one goes to the answer, so an estimate that
always fits cannot spend the whole budget."""


def may_go_on(messages: Sequence[Message]) -> bool:
    """Whether a need-only reply may still go on: fewer than :data:`GO_ON_LIMIT` went on in ``messages``."""
    return sum(m.role == "user" and m.content == GO_ON for m in messages) < GO_ON_LIMIT


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopConfig:
    """Everything the nodes need that does not change during a run; ``budget`` is the graph's own (used
    when a run is not given a ledger: ``graph.invoke`` directly, or as a subgraph)."""

    model: ChatModel
    tools: Mapping[str, Tool]
    system_prompt: str
    show_budget: bool
    budget: Budget = field(default_factory=Budget)
    prices: PriceTable = field(default_factory=PriceTable)
    settings: ModelSettings = field(default_factory=lambda: ModelSettings())
    max_tokens: int = 512
    answer_max_tokens: int = 256
    answer_input_reserve: int = 256
    max_turns: int = 30
    force_first_tool: bool = True
    regime_policy: RegimePolicy = field(default_factory=lambda: REGIME_POLICY)
    answer_nudge: str = field(default_factory=answer_now)
    """The final-answer request after the tools are done (``{reason}`` is filled in)."""
    durable: bool = False
    """Admit tool calls in a node of their own, so the checkpoint holds them before they run."""
    answer_schema: dict[str, Any] | None = None
    """With structured output: the JSON schema the final-answer call is constrained to (where a backend can)."""
    approve: frozenset[str] = frozenset()
    """Tools whose calls wait for a human decision before they are admitted ("*": every tool)."""
    turn_control: TurnControl | None = None
    """Turn control: the reminder line on every turn and, when dynamic, extensions the agent asks for."""
    nudge: bool = False
    """Budget forcing (``react_nudge``): an answer while tool budget remains gets the "Wait, ..." nudge."""
    budget_block: Literal["scarcest", "per_tool"] = "scarcest"
    """The ``<budget>`` block: one regime from the scarcest resource, or the paper's regime per tool."""
    stop_on_exhausted: bool = False
    """End the run at the first exhausted tool budget or turn of refused calls (the BATS paper's ReAct);
    by default it goes on while any capped tool can be called."""
    budget_stop: bool = False
    """The budget-aware stop (``agents.need``): estimates with each block; one that does not fit ends the run."""
    read_first: bool = False
    """Ask an agent that answers before reading anything to read first, once (``AgentOptions.read_first``)."""
    min_reads: int = 1
    """With ``read_first``: documents to read before an answer is taken (``AgentOptions.min_reads``)."""
    pace: bool = False
    """Hold each capped tool to the shown block's "at most N this turn" (``AgentOptions.pace``)."""
    pause_on_exhausted: bool = False
    """Where the run would end on a spent budget, pause for a grant (``Agent(on_exhausted="pause")``)."""

    def render_block(self, ledger: Any) -> str:
        units = {t.budget_key: t.units for t in self.tools.values() if isinstance(t.units, str)}
        if self.budget_block == "per_tool":
            return render_tool_block(ledger, units)
        return render_budget_block(ledger, self.regime_policy, units)

    def new_run(self, ledger: Any = None) -> MeteredRun:
        from ..budget.ledger import Ledger

        return MeteredRun(
            ledger if ledger is not None else Ledger(self.budget), self.model, self.tools, self.prices
        )


def _json_amount(value: Any) -> int | float | str:
    return value if isinstance(value, int | float) else str(value)


def _stop_on(exc: Exception) -> StopInfo:
    if isinstance(exc, Overrun):
        return stop("overrun", exc.resource, str(exc))
    if isinstance(exc, BudgetExceeded):
        if exc.resource == "context_window":
            return stop("context_full", "", "The prompt fills the model's context window.")
        return stop("budget_exhausted", exc.resource, str(exc))
    return stop("error", "model", f"{type(exc).__name__}: {exc}")


class AgentLoop:
    """The nodes of the react / tracker loop; BATS builds its graph from the same pieces."""

    def __init__(self, cfg: LoopConfig) -> None:
        self.cfg = cfg
        self.system = Message.system(cfg.system_prompt)

    # -- the run ---------------------------------------------------------------------------------
    def run_of(self, state: Any, runtime: Runtime[Any] | None) -> MeteredRun:
        return resolve_run(state, runtime, self.cfg.new_run)

    def keep(self, run: MeteredRun, update: dict[str, Any], pause: bool = True) -> dict[str, Any]:
        """Every update carries the run id and the ledger snapshot (what a checkpoint resumes from). With
        pause at exhaustion, an update that would answer because a budget ran out pauses for a grant instead."""
        stopped = update.get("stop") or {}
        if pause and self.cfg.pause_on_exhausted and update.get("phase") in ("answer", "select"):
            if stopped.get("kind") == "budget_exhausted":  # "select": BATS's way to its answer
                update["phase"] = "pause"
        update["run_id"] = run.id
        update["ledger"] = run.ledger.snapshot()
        if update.get("phase") == "done":
            forget(run)
        return update

    def exhausted_cap(self, run: MeteredRun) -> str:
        """The one exhausted-tool rule: ``tool_calls`` when the total cap is at zero, else the budget key of
        the first tool with nothing left (tools that share a budget key share its cap); "" when none is."""
        if run.ledger.remaining("tool_calls") == 0:
            return "tool_calls"
        for t in self.cfg.tools.values():
            left = run.ledger.tool_remaining(t.budget_key)
            if left is not None and left <= 0:
                return t.budget_key
        return ""

    def exhausted_tool(self, run: MeteredRun) -> str:
        """The cap that stopped the tools (``tool_calls`` when no single tool's is at zero)."""
        return self.exhausted_cap(run) or "tool_calls"

    # -- one acting call -------------------------------------------------------------------------
    async def act(
        self,
        run: MeteredRun,
        runtime: Runtime[Any] | None,
        node: str,
        messages: list[Message],
        schemas: list[ToolSchema],
        *,
        force: bool,
        role: str = "act",
        hold_calls: int = 1,
        hold_output: int | None = None,
    ) -> ModelResponse | StopInfo:
        """One acting turn with the answer reserve held back; a StopInfo when it cannot run or fails."""
        models = run.models
        n_in = models.count(messages, schemas)
        if models.out_room(n_in, self.cfg.max_tokens) < MIN_OUTPUT:
            return stop(
                "context_full",
                "",
                f"The prompt ({n_in} tokens) fills the model's context window ({models.window}).",
            )
        try:
            models.set_hold(
                n_in,
                hold_output if hold_output is not None else self.cfg.answer_max_tokens,
                calls=hold_calls,
                input_reserve=self.cfg.answer_input_reserve,
            )
            settings = ModelSettings(**self.cfg.settings)
            if force and schemas and self.cfg.force_first_tool:
                settings["tool_choice"] = "required"
            on_text = self.text_sink(runtime, node)
            response = await models.call(
                messages,
                schemas,
                settings,
                role=role,
                max_tokens=self.cfg.max_tokens,
                node=node,
                on_text=on_text,
                n_in=n_in,
            )
            if on_text is not None:
                on_text.flush()
        except (BudgetExceeded, Overrun, ModelError) as exc:
            self.report(runtime, exc)
            return _stop_on(exc)
        calls = response.message.tool_calls
        if self.cfg.settings.get("parallel_tool_calls") is False and len(calls) > 1:
            # the backend ignored the setting (text-parsed calls): the first call is the reply, as the API gives
            return replace(response, message=Message.assistant(response.message.content, calls[:1]))
        return response

    def report(self, runtime: Runtime[Any] | None, exc: Exception) -> None:
        """An overrun is an event too (the stop reason and the trace carry it as well)."""
        if isinstance(exc, Overrun):
            model = getattr(self.cfg.model, "name", "")
            emit(
                runtime,
                BudgetOverrun(exc.resource, str(exc.reserved), str(exc.reported), exc.source or model),
            )
            tracing.event("budgetgraph.overrun", {"resource": exc.resource, "reported": str(exc.reported)})

    def text_sink(self, runtime: Runtime[Any] | None, node: str) -> MarkupStripper | None:
        """Where a streamed reply's text goes: :class:`TextDelta` events, without the agent's markup."""
        to = sink(runtime)
        return None if to is None else MarkupStripper(lambda text: to(TextDelta(text, node)))

    # -- nodes -----------------------------------------------------------------------------------
    async def model_node(self, state: AgentState, runtime: Runtime[Any]) -> dict[str, Any]:
        run = self.run_of(state, runtime)
        history = user_messages(state)
        turns = state.get("turns", 0)
        if turns >= self.cfg.max_turns:
            return self.to_answer(run, stop("max_turns", "", f"reached max_turns={self.cfg.max_turns}"))
        tools = run.tools.available()
        if self.cfg.tools and not tools:
            key = self.exhausted_tool(run)
            return self.to_answer(
                run,
                stop("budget_exhausted", key, f"The {key.removeprefix(TOOL_PREFIX)} budget is exhausted."),
            )
        reading = state.get("read_asked") and history and history[-1].role == "user" and turns > 0
        going_on = state.get("go_on") and history and history[-1].role == "user"
        if reading:  # the turn after the read-first request: a reading call, as it asks
            tools = [t for t in tools if t.reads] or tools
        extra: list[Message] = []
        if (tc := self.cfg.turn_control) is not None and run.ledger.available("turns") == 0:
            asked = await self.ask_for_turns(run, runtime, history, tc)
            if isinstance(asked, dict):
                return asked
            extra = asked
            history = [*history, *extra]
        schemas = [t.schema for t in tools]
        prompt = [self.system, *self.remind(run, self.first_block(run, history, turns))]
        # the turn after a nudge must call a tool, as the nudge says (a small model echoed a result instead)
        after_nudge = self.cfg.nudge and state.get("idle", 0) > 0
        force = turns == 0 or after_nudge or bool(reading) or bool(going_on)
        response = await self.act(run, runtime, "model", prompt, schemas, force=force)
        if not isinstance(response, ModelResponse):
            if response.get("kind") in ("error", "overrun") or response.get("resource") == "seconds":
                answer = None if response.get("kind") == "error" else _last_text(history)
                return self.keep(run, {"phase": "done", "stop": response, "answer": answer})
            return self.to_answer(run, response)
        message = response.message
        update: dict[str, Any] = {"messages": [*extra, message], "turns": turns + 1}
        needs_more = False
        if self.cfg.budget_stop and (judged := self.judge_need(run, message, turns)) is not None:
            record, why = judged
            update["estimates"] = [record]
            if why is not None:  # the agent's own estimate ends the search: its calls are not run
                update["messages"] = [*extra, replace(message, tool_calls=())]
                return self.keep(run, {**update, "phase": "answer", "stop": stop("stopped_early", "", why)})
            needs_more = asks_for_more(record["need"])
        if message.tool_calls:
            return self.keep(run, {**update, "phase": "tools", "idle": 0, "go_on": False})
        answer = extract_answer(message.content)
        asked_reads = int(state.get("read_asked") or 0)
        if self.cfg.read_first and (to_read := self.to_read(run, history, asked_reads)) is not None:
            # an answer (or a reply with neither answer nor call) before enough was read: read, once per document
            readers, done = to_read
            ask = Message.user((READ_MORE if done else READ_FIRST).format(tools=" or ".join(readers)))
            kept = answer or state.get("answer") or None
            asked = {"messages": [*extra, message, ask], "read_asked": asked_reads + 1, "answer": kept}
            return self.keep(run, {**update, **asked, "phase": "act"})
        if needs_more and not answer and run.tools.available() and may_go_on(history):
            # the reply was only an estimate of calls still needed, and they fit: the next turn makes one
            went = {"messages": [*extra, message, Message.user(GO_ON)], "go_on": True}
            return self.keep(run, {**update, **went, "phase": "act"})
        idle = state.get("idle", 0) + 1
        if self.cfg.nudge and answer and idle < NUDGE_LIMIT and run.tools.available():
            nudged = {"messages": [*extra, message, Message.user(NUDGE)], "idle": idle, "answer": answer}
            return self.keep(run, {**update, **nudged, "phase": "act"})
        if not answer:
            return self.keep(run, {**update, "phase": "answer", "stop": stop("answered", "", NO_ANSWER)})
        return self.keep(run, {**update, "phase": "done", "answer": answer, "stop": stop("answered")})

    def need_line(self) -> str:
        """The budget-aware stop's request for an estimate, under each block ("" when it is off)."""
        if not self.cfg.budget_stop:
            return ""
        return "\n" + NEED_LINE.format(example=need_example(list(self.cfg.tools)))

    def first_block(self, run: MeteredRun, history: list[Message], turns: int) -> list[Message]:
        """The first turn's prompt shows the budget block too (so the first call is sized to its share, not
        a whole small cap); it rides on the question in this prompt only, never in the history."""
        if (
            turns
            or not self.cfg.show_budget
            or not run.ledger.limits
            or not history
            or history[-1].role != "user"
        ):
            return history
        block = self.cfg.render_block(run.ledger) + self.need_line()
        last = history[-1]
        return [*history[:-1], replace(last, content=f"{last.content}\n\n{block}")]

    def to_read(
        self, run: MeteredRun, history: Sequence[Message], asked: int
    ) -> tuple[list[str], int] | None:
        """The funded reading tools and the reading calls made so far, while fewer than ``min_reads`` were
        made and asked for; None when there is nothing to ask."""
        want = self.cfg.min_reads
        readers = {t.name for t in self.cfg.tools.values() if t.reads}
        done = sum(c.name in readers for m in history for c in m.tool_calls)
        funded = [t.name for t in run.tools.available() if t.reads]
        if not readers or done >= want or asked >= want or not funded:
            return None
        return funded, done

    def judge_need(
        self, run: MeteredRun, message: Message, turn: int
    ) -> tuple[dict[str, Any], str | None] | None:
        """The estimate in this reply, judged against what remains; None when the reply has none."""
        estimate = parse_need(message.content, list(self.cfg.tools))
        if estimate is None:
            return None
        return judge_need(estimate, run.ledger, {n: t.budget_key for n, t in self.cfg.tools.items()}, turn)

    def remind(self, run: MeteredRun, history: list[Message]) -> list[Message]:
        """Turn control's reminder on the latest message of this turn's prompt (not kept in the history)."""
        tc = self.cfg.turn_control
        left = run.ledger.remaining("turns")
        if tc is None or not tc.reminder or left is None or not history:
            return history
        last = history[-1]
        return [
            *history[:-1],
            replace(last, content=f"{last.content}\n\n{TURN_REMINDER.format(n=int(left))}"),
        ]

    async def ask_for_turns(
        self, run: MeteredRun, runtime: Runtime[Any] | None, history: list[Message], tc: TurnControl
    ) -> list[Message] | dict[str, Any]:
        """At the turn cap: a dynamic cap asks the agent whether it needs more turns and grants ``tc.step``
        (journaled) if so; the messages to keep, or the node's update when the run goes to its answer."""
        limit = int(run.ledger.limits.get("turns", 0))
        used = int(run.ledger.spent("turns"))
        out = stop("budget_exhausted", "turns", f"The turn budget ({limit} turns) is exhausted.")
        grant = tc.extension(limit)
        if grant <= 0:
            return self.to_answer(run, out)
        nudge = Message.user(TURN_LIMIT_REACHED.format(used=used))
        response = await self.act(
            run, runtime, "model", [self.system, *history, nudge], [], force=False, role="extend"
        )
        if not isinstance(response, ModelResponse):
            return self.to_answer(run, response)
        reply = response.message
        asked = MORE_TURNS.search(reply.content)
        if asked is None:
            answer = extract_answer(reply.content)
            if answer:
                return self.keep(
                    run, {"messages": [nudge, reply], "phase": "done", "answer": answer, "stop": out}
                )
            return self.keep(run, {"messages": [nudge, reply], "phase": "answer", "stop": out})
        reason = asked.group(1).strip() or "(no reason given)"
        new_limit = run.ledger.grant("turns", grant, by="turn_control", reason=reason)
        emit(runtime, BudgetGrant("turns", grant, _json_amount(new_limit), "turn_control", reason))
        return [nudge, reply]

    async def pause_node(self, state: AgentState, runtime: Runtime[Any]) -> dict[str, Any]:
        """Wait for more budget (an interrupt; nothing happens before it, as the node re-runs on resume), then
        raise the granted caps and go on, or answer with what the run has when the app declines."""
        run = self.run_of(state, runtime)
        info: StopInfo = dict(state.get("stop") or {})  # type: ignore[assignment]
        reply = interrupt(budget_request(run.ledger, info, state.get("estimates") or ()))
        said = str(info.get("message") or "The budget is exhausted.").rstrip(".") + "."
        try:
            grant = read_grant(reply, run.ledger)
        except ConfigError as exc:
            why = f"{said} The grant was not understood ({exc})."
            return self.keep(run, {"phase": "answer", "stop": {**info, "message": why}}, pause=False)
        refused = _account_refuses(run, grant) if grant else ""
        if not grant or refused:
            why = f"{said} {refused or 'No more budget was granted.'}"
            return self.keep(run, {"phase": "answer", "stop": {**info, "message": why}}, pause=False)
        raised = []
        for key, amount in grant.items():
            new = run.ledger.grant(key, amount, by="app", reason="granted when the run paused at exhaustion")
            name = key.removeprefix(TOOL_PREFIX)
            emit(runtime, BudgetGrant(name, _json_amount(amount), _json_amount(new), "app", said))
            raised.append(f"{name} +{_json_amount(amount)}")
        block = "\n\n" + self.cfg.render_block(run.ledger) if self.cfg.show_budget else ""
        note = Message.user(f"More budget was granted ({', '.join(raised)}). Go on with the task.{block}")
        update = {"phase": "act", "stop": None, "refused_turns": 0, "messages": [note]}
        return self.keep(run, update, pause=False)

    def to_answer(self, run: MeteredRun, info: StopInfo) -> dict[str, Any]:
        return self.keep(run, {"phase": "answer", "stop": info})

    def pace(self, run: MeteredRun) -> dict[str, int]:
        """The units each capped tool may use this turn, as the shown block says (empty when not paced)."""
        if not (self.cfg.pace and self.cfg.show_budget):
            return {}
        tools = {n: (t.budget_key, isinstance(t.units, str)) for n, t in self.cfg.tools.items()}
        return turn_allowance(run.ledger, tools)

    def admit(
        self, run: MeteredRun, calls: Sequence[Any], skip: Mapping[str, str] | None = None
    ) -> tuple[list[Answered | None], list[Admitted], list[str]]:
        """Admit the calls in order: the answers of those not run, the admitted ones, the resources refused.
        ``skip`` maps the ids of calls not to admit (rejected by a human) to what the model is told."""
        texts: list[Answered | None] = [None] * len(calls)
        admitted: list[Admitted] = []
        refused: list[str] = []
        pace = self.pace(run)
        for i, call in enumerate(calls):
            if skip and call.id in skip:
                texts[i] = Answered(skip[call.id], "refused")
                continue
            got = run.tools.admit(call, pace.get(call.name))
            if isinstance(got, Answered):
                texts[i] = got
            elif isinstance(got, BudgetExceeded):
                texts[i] = Answered(refusal_text(got) + " This call was not run.", "refused")
                refused.append(got.resource)
            else:
                admitted.append(got)
                run.pending[call.id] = got
                if call.name in pace:
                    pace[call.name] -= got.units
        return texts, admitted, refused

    async def tools_node(self, state: AgentState, runtime: Runtime[Any]) -> dict[str, Any]:
        run = self.run_of(state, runtime)
        calls = list(user_messages(state)[-1].tool_calls)
        skip: dict[str, str] = {}
        if self.cfg.approve:  # may pause the run here, before anything is reserved
            calls, skip = review(self.cfg.approve, calls)
        texts, admitted, refused = self.admit(run, calls, skip)
        if self.cfg.durable:  # the checkpoint after this node holds what is in flight
            inflight = [a.record() for a in admitted]
            notes = {
                c.id: {"text": t.text, "status": t.status} for c, t in zip(calls, texts, strict=True) if t
            }
            return self.keep(
                run, {"phase": "run_tools", "inflight": inflight, "notes": notes, "refused": refused}
            )
        return await self.finish_tools(
            run, runtime, calls, texts, admitted, refused, state.get("refused_turns", 0)
        )

    async def run_tools_node(self, state: AgentState, runtime: Runtime[Any]) -> dict[str, Any]:
        run = self.run_of(state, runtime)
        calls = user_messages(state)[-1].tool_calls
        notes = dict(state.get("notes") or {})
        texts: list[Answered | None] = [_note(notes.get(c.id)) for c in calls]
        admitted: list[Admitted] = []
        lost: dict[str, str] = {}
        for record in state.get("inflight") or []:
            found = run.pending.get(record["id"])
            if found is not None:
                admitted.append(found)
            else:  # in flight when the run stopped (a crash): counted as spent in the snapshot
                lost[record["id"]] = record["tool"]
        for i, call in enumerate(calls):
            if call.id in lost:
                texts[i] = await self._lost(run, call)
        update = await self.finish_tools(
            run,
            runtime,
            calls,
            texts,
            admitted,
            list(state.get("refused") or []),
            state.get("refused_turns", 0),
        )
        update.update(inflight=[], notes={}, refused=[])
        return update

    async def _lost(self, run: MeteredRun, call: Any) -> Answered:
        """A call that was in flight when the run stopped: run again (through the meter, under the run's
        deadline) only if its tool is idempotent."""
        tool = self.cfg.tools.get(call.name)
        if tool is None or not tool.idempotent:
            return Answered(
                "This call was in flight when the run stopped: it may have run. It counts as spent and was "
                "not run again (its tool is not declared idempotent).",
                "error",
            )
        return await run.tools.rerun(call)

    async def finish_tools(
        self,
        run: MeteredRun,
        runtime: Runtime[Any] | None,
        calls: Sequence[Any],
        texts: list[Answered | None],
        admitted: list[Admitted],
        refused: list[str],
        refused_turns: int = 0,
    ) -> dict[str, Any]:
        outcomes = await asyncio.gather(*(self._run_one(run, runtime, a) for a in admitted))
        deadline = False
        overrun = None
        for a, outcome in zip(admitted, outcomes, strict=True):
            texts[[c.id for c in calls].index(a.call.id)] = Answered(outcome.text, outcome.status)
            deadline = deadline or outcome.deadline
            if outcome.overrun is not None:
                overrun = overrun or outcome.overrun
                self.report(runtime, outcome.overrun)
        block = (
            "\n\n" + self.cfg.render_block(run.ledger) if self.cfg.show_budget and run.ledger.limits else ""
        )
        block += self.need_line()
        messages = [
            Message.tool((t.text if t else "") + block, c.id, c.name, t.status if t else "error")
            for c, t in zip(calls, texts, strict=True)
        ]
        all_refused = bool(refused) and not admitted
        update: dict[str, Any] = {"messages": messages, "phase": "act", "refused_turns": 0}
        gone = self.exhausted_cap(run) if self.cfg.stop_on_exhausted else ""
        if overrun is not None:  # a tool billed more than its bound (or a cost that cannot be true)
            update.update(phase="done", stop=_stop_on(overrun))
        elif deadline or run.ledger.available("seconds") == 0:
            update.update(phase="done", stop=stop("budget_exhausted", "seconds", "The time budget is spent."))
        elif self.cfg.tools and not run.tools.available():
            key = self.exhausted_tool(run)
            update.update(
                phase="answer",
                stop=stop(
                    "budget_exhausted", key, f"The {key.removeprefix(TOOL_PREFIX)} budget is exhausted."
                ),
            )
        elif gone:  # the paper's ReAct: the first exhausted tool budget ends the run
            update.update(
                phase="answer",
                stop=stop(
                    "budget_exhausted", gone, f"The {gone.removeprefix(TOOL_PREFIX)} budget is exhausted."
                ),
            )
        elif all_refused and (self.cfg.stop_on_exhausted or refused_turns >= 1):
            # a second turn of refused calls in a row: the model is not using what is left, so it answers
            update.update(
                phase="answer", stop=stop("budget_exhausted", refused[0], "every tool call was refused")
            )
        elif all_refused:  # back to the model, with the refusals and what is left in the block
            update["refused_turns"] = refused_turns + 1
        return self.keep(run, update)

    async def _run_one(self, run: MeteredRun, runtime: Runtime[Any] | None, a: Admitted) -> ToolOutcome:
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

    async def answer_node(self, state: AgentState, runtime: Runtime[Any]) -> dict[str, Any]:
        run = self.run_of(state, runtime)
        info = state.get("stop") or stop("answered")
        reason = info.get("message") or "The budget is exhausted."
        history = user_messages(state)
        nudge = Message.user(self.cfg.answer_nudge.format(reason=reason.rstrip(".") + "."))
        fallback = {"phase": "done", "stop": info, "answer": _last_text(history)}
        messages = self.fit_answer(run, history, nudge)
        if messages is None:
            return self.keep(run, fallback)
        settings = ModelSettings(**self.cfg.settings)
        settings["tool_choice"] = "none"
        if self.cfg.answer_schema is not None:
            settings["json_schema"] = self.cfg.answer_schema
        on_text = self.text_sink(runtime, "answer")
        try:
            response = await run.models.call(
                messages,
                [],
                settings,
                role="answer",
                max_tokens=self.cfg.answer_max_tokens,
                use_hold=True,
                node="answer",
                on_text=on_text,
            )
            if on_text is not None:
                on_text.flush()
        except BudgetExceeded as exc:
            over = _stop_on(exc) if exc.resource == "seconds" else info
            return self.keep(run, {**fallback, "stop": over})
        except (Overrun, ModelError) as exc:
            self.report(runtime, exc)
            return self.keep(run, {**fallback, "stop": _stop_on(exc)})
        text = response.message.content
        answer = extract_answer(text) if text else _last_text(history)
        return self.keep(
            run,
            {"messages": [nudge, Message.assistant(text)], "phase": "done", "answer": answer, "stop": info},
        )

    def fit_answer(self, run: MeteredRun, history: list[Message], nudge: Message) -> list[Message] | None:
        """The answer call's messages, old tool results blanked until it fits budget and window; None if never."""
        for _ in range(len(history) + 1):
            messages = [self.system, *history, nudge]
            n_in = run.models.count(messages, [])
            if run.models.out_room(n_in, self.cfg.answer_max_tokens) >= MIN_OUTPUT:
                planned = run.models.plan(n_in, self.cfg.answer_max_tokens, use_hold=True)
                if not isinstance(planned, BudgetExceeded):
                    return messages
            if not _shrink(history):
                return None
        return None


def _shrink(history: list[Message]) -> bool:
    """Blank the oldest tool result still holding text, so the answer call fits; False when none is left."""
    for i, m in enumerate(history):
        if m.role == "tool" and not m.content.startswith("[removed"):
            history[i] = Message.tool("[removed to fit the budget]", m.tool_call_id or "", m.name)
            return True
    return False


def _last_text(history: Sequence[Message]) -> str | None:
    for m in reversed(history):
        if m.role == "assistant" and m.content.strip():
            return extract_answer(m.content)
    return None


Node = Callable[[Any, Runtime[Any]], Awaitable[dict[str, Any]]]


def routed(node: Node, routes: Mapping[str, str], loop: AgentLoop | None = None) -> Any:
    """The node's update plus where to go next (by its ``phase``), as one ``Command``. With ``loop``, an
    overrun raised anywhere in the node ends the run with stop reason ``overrun``."""

    async def run(state: Any, runtime: Runtime[Any], config: RunnableConfig) -> Command[str]:
        # Python 3.10: asyncio tasks do not carry LangGraph's run config, which interrupt() reads
        token = var_child_runnable_config.set(config) if sys.version_info < (3, 11) else None
        try:
            update = await node(state, runtime)
        except Overrun as exc:
            if loop is None:
                raise
            loop.report(runtime, exc)
            metered = loop.run_of(state, runtime)
            answer = state.get("proposed") if isinstance(state, dict) else None
            update = loop.keep(metered, {"phase": "done", "stop": _stop_on(exc), "answer": answer})
        finally:
            if token is not None:
                var_child_runnable_config.reset(token)
        return Command(update=update, goto=routes.get(update.get("phase", "done"), END))

    run.__name__ = getattr(node, "__name__", "node")
    return run


def build_graph(cfg: LoopConfig) -> StateGraph[AgentState, RunContext]:
    """The uncompiled graph (compile it with your own checkpointer, or embed it as a subgraph)."""
    loop = AgentLoop(cfg)
    graph: StateGraph[AgentState, RunContext] = StateGraph(AgentState, context_schema=RunContext)
    after_tools = "run_tools" if cfg.durable else "model"
    routes = {
        "tools": "tools",
        "answer": "answer",
        "act": "model",
        "run_tools": "run_tools",
        "pause": "pause",
    }
    paused = ("pause",) if cfg.pause_on_exhausted else ()
    graph.add_node(
        "model", routed(loop.model_node, routes), destinations=("tools", "answer", "model", *paused, END)
    )
    graph.add_node(
        "tools", routed(loop.tools_node, routes), destinations=(after_tools, "answer", *paused, END)
    )
    if cfg.durable:
        graph.add_node(
            "run_tools", routed(loop.run_tools_node, routes), destinations=("model", "answer", *paused, END)
        )
    if cfg.pause_on_exhausted:
        graph.add_node("pause", routed(loop.pause_node, routes), destinations=("model", "answer", END))
    graph.add_node("answer", loop.answer_node)
    graph.add_edge(START, "model")
    graph.add_edge("answer", END)
    return graph


def _account_refuses(run: MeteredRun, grant: Mapping[str, Any]) -> str:
    """Why the run's account cannot fund a grant ("" when it can, or the run has none): a grant raises the
    run's caps, never the account's, so an account with less left than granted says no."""
    account = run.ledger.account
    if account is None:
        return ""
    for key, amount in grant.items():
        left = account.available(key)
        if left is not None and amount > left:
            name = key.removeprefix(TOOL_PREFIX)
            return f"The account {account.key!r} has {left} {name} left, less than the {amount} granted."
    return ""


def _note(saved: Any) -> Answered | None:
    """A checkpointed answer of a call that was not run (a checkpoint of an earlier release holds its text)."""
    if saved is None:
        return None
    if isinstance(saved, str):
        return Answered(saved, "error")
    return Answered(str(saved.get("text", "")), saved.get("status") or "error")
