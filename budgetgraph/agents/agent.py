"""The Agent facade: ``run`` / ``arun`` / ``astream`` / ``aresume`` over one compiled graph, its events and its
result. What a planner does is in its registry entry; this module only builds the run and reads it out."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command
from pydantic import BaseModel

from .. import tracing
from ..budget.ledger import Ledger
from ..budget.limits import Budget, closest
from ..budget.prices import PriceTable
from ..budget.shared import default_account
from ..budget.store import Account
from ..errors import BudgetExhausted, ConfigError
from ..meter import MeteredRun
from ..models.base import ChatModel
from ..models.langchain_messages import conversation
from ..models.messages import Message, ModelSettings, ToolCall
from ..models.registry import infer_model
from ..tools.base import Tool
from .checkpoint import registered
from .events import AgentEvent, ApprovalRequest, BudgetRequest, FinalAnswer, events_of
from .graph import LoopConfig
from .need import NEED_ASK, need_example
from .options import AgentOptions
from .pause import DECLINE, plain, read_caps, read_grant, request_of
from .planners import build_planner_graph
from .prompts import AnswerStyle, answer_now
from .prompts import system_prompt as build_system_prompt
from .registry import PlannerContext, PlannerSpec, get_planner, make_options
from .result import Question, RunResult, StopReason, SubRunner, set_agent_factory
from .runtime import RunContext
from .state import AgentState
from .structured import answer_nudge, parse_output, repair_output, schema_instructions
from .threads import OnBusy, ThreadLease, ThreadPolicy, owning
from .turns import TurnControl, baseline_turns, turn_control

__all__ = ["Agent", "Question", "RunResult", "StopReason"]


def _with_need(instructions: str | None, budget_stop: bool, tools: Sequence[str]) -> str | None:
    """The instructions, plus the budget-aware stop's request for estimates when it is on."""
    if not budget_stop:
        return instructions
    ask = NEED_ASK.format(example=need_example(tools))
    return f"{instructions}\n\n{ask}" if instructions else ask


def _details(final: Mapping[str, Any]) -> dict[str, Any]:
    """What the planner reports about its run, with the budget-aware stop's estimates when it made any."""
    details = dict(final.get("details") or {})
    if final.get("estimates"):
        details["estimates"] = list(final["estimates"])
    return details


class Agent:
    """A budget-aware tool-using agent: a model, tools, a budget, a ``planner`` from the registry
    (``budgetgraph.agents.PLANNERS``; ``"tracker"`` by default, ``"react"`` is the baseline that shows the
    model no budget) and its ``options`` (the planner's options class: ``BATSOptions(mode="full")``,
    ``SamplingOptions(samples=8)``, ``AgentOptions(turn_cap=5)``; see docs/planners.md).

    ``system_prompt`` replaces the built-in research-agent prompt (``instructions`` are appended to either).
    ``answer_style="short"`` asks for the shortest answer span (exact-match evaluations); the default
    ``"full"`` lets the answer be a sentence or two. ``on_exhausted="raise"`` raises
    :class:`~budgetgraph.errors.BudgetExhausted` instead of returning the best answer; ``"pause"`` (needs a
    checkpointer) pauses the run where a budget runs out with a budget request, and ``aresume(thread_id,
    grant={...})`` goes on, in this process or another. ``budget_scope``:
    ``"run"`` (default) gives every ``arun`` a fresh budget, also on a ``thread_id`` that continues a
    conversation; ``"thread"`` makes the budget a conversation cap (needs a checkpointer). ``approve`` names
    tools (or True: all) whose calls wait for a human decision. ``output_type`` validates the answer as a
    pydantic model. ``threads`` says what a second request on a busy thread does (:class:`ThreadPolicy`:
    ``on_busy="reject"`` raises :class:`~budgetgraph.errors.ThreadBusy`, ``"enqueue"`` waits its turn); a run,
    resume or cap change on a named thread of a checkpointer owns the thread while it works.
    """

    def __init__(
        self,
        model: str | ChatModel = "local",
        tools: Sequence[Tool] = (),
        budget: Budget | str | None = None,
        *,
        planner: Literal["react", "tracker"] | str = "tracker",
        options: AgentOptions | None = None,
        prices: PriceTable | None = None,
        instructions: str | None = None,
        system_prompt: str | None = None,
        settings: ModelSettings | None = None,
        max_tokens: int = 512,
        answer_max_tokens: int = 256,
        max_turns: int = 30,
        answer_style: AnswerStyle = "full",
        on_exhausted: Literal["answer", "raise", "pause"] = "answer",
        checkpointer: Any = None,
        budget_scope: Literal["run", "thread"] = "run",
        approve: bool | Sequence[str] = False,
        output_type: type[BaseModel] | None = None,
        threads: ThreadPolicy | None = None,
    ) -> None:
        self.spec: PlannerSpec = get_planner(planner)
        self.options = make_options(self.spec, options, what="option")
        if on_exhausted not in ("answer", "raise", "pause"):
            raise ConfigError(f"on_exhausted must be 'answer', 'raise' or 'pause', not {on_exhausted!r}")
        if on_exhausted == "pause" and checkpointer is None:
            raise ConfigError(
                "on_exhausted='pause' waits for a grant in the run's checkpoint: pass checkpointer= (e.g. "
                "langgraph.checkpoint.sqlite.aio.AsyncSqliteSaver, to resume in another process)"
            )
        if budget_scope not in ("run", "thread"):
            raise ConfigError("budget_scope must be 'run' (a budget per arun) or 'thread' (per conversation)")
        if budget_scope == "thread" and checkpointer is None:
            raise ConfigError(
                "budget_scope='thread' keeps the ledger in the thread's checkpoint: pass checkpointer="
            )
        names = [t.name for t in tools]
        if len(set(names)) != len(names):
            raise ConfigError(f"tool names must be unique, got {names}")
        needs = frozenset({"*"} if approve is True else () if approve is False else approve)
        if needs and checkpointer is None:
            raise ConfigError(
                "approve= pauses the run until a decision comes, which needs a checkpointer: pass "
                "checkpointer= (e.g. langgraph.checkpoint.memory.InMemorySaver())"
            )
        if unknown := sorted(needs - set(names) - {"*"}):
            raise ConfigError(f"approve= names tools the agent does not have: {unknown}; its tools: {names}")
        self.threads = ThreadPolicy.of(threads)
        if output_type is not None and not (
            isinstance(output_type, type) and issubclass(output_type, BaseModel)
        ):
            raise ConfigError(f"output_type must be a pydantic model class, not {output_type!r}")
        if answer_style not in ("full", "short", "code"):
            raise ConfigError(f"answer_style must be 'full', 'short' or 'code', not {answer_style!r}")
        self._prompt_args = (instructions, system_prompt)
        self.output_type = output_type
        if output_type is not None:
            instructions = "\n\n".join(p for p in (instructions, schema_instructions(output_type)) if p)
        self.model = infer_model(model)
        self.tools = list(tools)
        capped = list(dict.fromkeys(t.budget_key for t in tools))
        self.budget = Budget.parse(budget, capped) if isinstance(budget, str) else (budget or Budget())
        _check_budget_keys(self.budget, capped)
        opts = self.options
        self.turn_control = _turn_control(opts.turn_cap, opts.turn_baseline, planner)
        if self.turn_control is not None:
            if self.budget.turns is not None:
                raise ConfigError("give the turn cap once: turn_cap= or the budget's turns=, not both")
            self.budget = replace(self.budget, turns=self.turn_control.cap)
        self.planner = planner
        self.on_exhausted = on_exhausted
        self.budget_scope = budget_scope
        self.answer_style: AnswerStyle = answer_style
        block = opts.budget_block or self.spec.budget_block
        self.config = LoopConfig(
            model=self.model,
            tools={t.name: t for t in self.tools},
            system_prompt=build_system_prompt(
                self.spec.shows_budget,
                _with_need(instructions, opts.budget_stop, [t.name for t in self.tools]),
                system_prompt,
                opts.regime_policy,
                answer_style,
                block == "per_tool",
            ),
            show_budget=self.spec.shows_budget,
            budget=self.budget,
            prices=prices or PriceTable(),
            settings=settings or ModelSettings(temperature=0.0),
            max_tokens=max_tokens,
            answer_max_tokens=answer_max_tokens,
            max_turns=max_turns,
            force_first_tool=opts.force_first_tool,
            regime_policy=opts.regime_policy,
            answer_nudge=answer_now(answer_style) if output_type is None else answer_nudge(output_type),
            answer_schema=None if output_type is None else output_type.model_json_schema(),
            durable=checkpointer is not None,
            approve=needs,
            turn_control=self.turn_control,
            budget_block=block,
            stop_on_exhausted=opts.stop_on_exhausted,
            budget_stop=opts.budget_stop,
            read_first=opts.read_first,
            min_reads=opts.min_reads,
            pace=opts.pace,
            pause_on_exhausted=on_exhausted == "pause",
        )
        if self.budget.usd is not None:  # an unknown price with a dollar cap is an error before any spend
            self.config.prices.require_model_price(
                self.model.name, self.model.price, getattr(self.model, "provider", None)
            )
        self.checkpointer = registered(checkpointer)
        context = PlannerContext(
            name=planner,
            config=self.config,
            options=opts,
            model=self.model,
            tools=self.tools,
            spawn=self.spawn,
            instructions=_with_need(self._prompt_args[0], opts.budget_stop, [t.name for t in self.tools]),
            system_prompt=system_prompt,
            answer_style=answer_style,
        )
        self.graph = build_planner_graph(context).compile(
            checkpointer=self.checkpointer, interrupt_before=list(opts.interrupt_before) or None
        )
        if on_exhausted == "pause" and "pause" not in self.graph.nodes:
            raise ConfigError(
                f"the {planner!r} planner cannot pause at exhaustion yet: use react or tracker, or "
                "on_exhausted='answer'"
            )

    def spawn(
        self,
        planner: str,
        *,
        model: ChatModel | None = None,
        extra: str | None = None,
        budget: Budget | None = None,
        options: AgentOptions | None = None,
    ) -> SubRunner:
        """A sub-run like this agent (its tools, prompts, settings, turn control and common options) with
        another planner (a single-run one), and optionally another model, ``extra`` instructions, a budget
        of its own and the planner's options; with no budget it runs on the child ledger it is given."""
        spec = get_planner(planner)
        if spec.build is None or spec.runs_sub_agents:
            raise ConfigError(
                f"a sub-run's planner must be a single-run planner such as react, not {planner!r}"
            )
        instructions, system_prompt = self._prompt_args
        if extra:
            instructions = "\n\n".join(p for p in (instructions, extra) if p)
        common = {**self.options.common(), "budget_block": None, "interrupt_before": ()}
        if options is None and type(self.options) is spec.options is not AgentOptions:
            options = replace(self.options, budget_block=None, interrupt_before=())  # e.g. BATS keeps BATS's
        chosen = replace(
            make_options(spec, options, defaults=common), turn_cap=self.turn_control, turn_baseline=None
        )
        return Agent(
            model or self.model,
            self.tools,
            budget or Budget(),
            planner=planner,
            options=chosen,
            prices=self.config.prices,
            instructions=instructions,
            system_prompt=system_prompt,
            settings=self.config.settings,
            max_tokens=self.config.max_tokens,
            answer_max_tokens=self.config.answer_max_tokens,
            max_turns=self.config.max_turns,
            answer_style=self.answer_style,
        )

    # -- running -------------------------------------------------------------------------------
    def _config(self, thread_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": thread_id}, "recursion_limit": 4 * self.config.max_turns + 10}

    def _kwargs(self) -> dict[str, Any]:
        # with a checkpointer, each step's checkpoint is written before the next starts (at most once)
        return {"durability": "sync"} if self.checkpointer is not None else {}

    @asynccontextmanager
    async def _owning(
        self, thread_id: str | None, on_busy: OnBusy | None
    ) -> AsyncIterator[ThreadLease | None]:
        """Hold the thread for the block (a checkpointed agent on a named thread); nothing to hold otherwise."""
        if self.checkpointer is None or thread_id is None:
            yield None
            return
        async with owning(self.checkpointer, thread_id, self.threads, on_busy) as lease:
            yield lease

    async def _checkpoint_id(self, thread_id: str) -> str | None:
        """The thread's latest checkpoint, as a request sees it before it waits for the thread."""
        if self.checkpointer is None:
            return None
        return _checkpoint_of(await self.graph.aget_state(self._config(thread_id)))

    async def _ledger_for(
        self, saved: Mapping[str, Any], ledger: Ledger | None, account: Account | None
    ) -> Ledger:
        """The run's ledger: the one passed (a parent's child), the thread's (``budget_scope="thread"``, from
        its checkpoint ``saved``), or a new one of the agent's budget."""
        if ledger is not None:
            if account is not None:
                if ledger.account is not None and ledger.account is not account:
                    raise ConfigError("the ledger passed already has an account: pass one or the other")
                ledger.account = account
            return ledger
        if self.budget_scope == "thread" and saved.get("ledger"):
            return Ledger.from_snapshot(saved["ledger"], account=account)
        return Ledger(self.budget, account=account)

    async def _thread_state(self, thread_id: str | None) -> dict[str, Any]:
        """What the thread's checkpoint holds ({} for a new thread); a thread paused for a decision or a grant
        takes no new question (it would drop the pause without a word)."""
        if self.checkpointer is None or thread_id is None:
            return {}
        snapshot = await self.graph.aget_state(self._config(thread_id))
        if getattr(snapshot, "interrupts", ()):
            how = "grant= or grant='decline'" if request_of(snapshot.interrupts) is not None else "decisions="
            raise ConfigError(
                f"thread {thread_id!r} is paused, waiting for {how}: a new question would drop that pause. "
                f"Resume it first (agent.aresume({thread_id!r}, {how.split(' or ')[0]}...)), or ask on a new thread"
            )
        return dict(snapshot.values or {})

    def _opening(self, question: Question) -> list[Message]:
        history = conversation(question)
        if len(history) > 1 and not self.spec.takes_history:
            raise ConfigError(
                f"a message history is supported by the react and tracker planners; {self.planner!r} takes one "
                "question (a string)"
            )
        return history

    async def _start(
        self, question: Question, thread_id: str | None, ledger: Ledger | None, account: Account | None = None
    ) -> tuple[AgentState, RunnableConfig, MeteredRun]:
        tid = thread_id or uuid.uuid4().hex
        if account is None and ledger is None:
            account = default_account.get()  # an evaluation's sweep-wide account, when one is set
        saved = await self._thread_state(thread_id)
        run = self.config.new_run(await self._ledger_for(saved, ledger, account))
        state: AgentState = {
            "messages": self._opening(question),
            "ledger": run.ledger.snapshot(),
            "run_id": run.id,
            "phase": "act",
            "turns": 0,
            "answer": None,
            "stop": None,
            "inflight": [],
            "account": None if run.ledger.account is None else run.ledger.account.describe(),
        }
        return state, self._config(tid), run

    async def arun(
        self,
        question: Question,
        *,
        thread_id: str | None = None,
        ledger: Ledger | None = None,
        account: Account | None = None,
        on_busy: OnBusy | None = None,
    ) -> RunResult:
        """Run one question to its end. ``question`` is a string, or a message history (budgetgraph or LangChain
        messages) ending with the user's turn. ``ledger`` lets a parent pass a child ledger; ``account`` (from
        a budget store) makes the run also spend from a budget shared across runs, processes and machines.
        ``on_busy`` overrides the agent's :class:`ThreadPolicy` for this call."""
        async with self._owning(thread_id, on_busy) as lease:
            return await self._arun(question, thread_id, ledger, account, lease)

    async def _arun(
        self,
        question: Question,
        thread_id: str | None,
        ledger: Ledger | None,
        account: Account | None,
        lease: ThreadLease | None,
    ) -> RunResult:
        state, config, run = await self._start(question, thread_id, ledger, account)
        attrs = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": f"budgetgraph.{self.planner}",
            "gen_ai.request.model": self.model.name,
            "budgetgraph.thread_id": config["configurable"]["thread_id"],
        }
        with tracing.span(f"invoke_agent {self.planner}", attrs) as current:
            context = RunContext(run=run, lease=lease)
            final = await self.graph.ainvoke(state, config, context=context, **self._kwargs())
            result = await self._structured(self._result(final, run.ledger, config), run)
            usage = result.usage
            tracing.set_attributes(
                current,
                {
                    "gen_ai.usage.input_tokens": usage.input_tokens,
                    "gen_ai.usage.output_tokens": usage.output_tokens,
                    "budgetgraph.usd": float(usage.usd),
                    "budgetgraph.tool_calls": usage.total_tool_calls,
                    "budgetgraph.stop_reason": str(result.stop_reason),
                    "budgetgraph.stop.kind": result.stop_reason.kind,
                    "budgetgraph.stop.resource": result.stop_reason.resource or None,
                    **tracing.budget_attributes(run.ledger),
                },
            )
            tracing.record_run(run.ledger, result.stop_reason.kind, f"budgetgraph.{self.planner}")
        return result

    async def aresume(
        self,
        thread_id: str,
        *,
        account: Account | None = None,
        decisions: Any = None,
        grant: Any = None,
        on_busy: OnBusy | None = None,
    ) -> RunResult:
        """Continue a checkpointed run (after an interrupt or a crash) from what was really spent; a tool call
        that was in flight counts as spent and is not run again unless its tool is idempotent. A run paused
        for tool approval takes ``decisions=``; one paused at exhaustion takes ``grant=``: more of each cap
        (``{"search": 2, "usd": "0.50"}``) or ``"decline"``. A decision or grant is applied once: one that
        waited while another request answered the same pause is refused."""
        seen = await self._checkpoint_id(thread_id)
        async with self._owning(thread_id, on_busy) as lease:
            start, config, run, _ = await self._resumed(thread_id, account, decisions, grant, seen)
            context = RunContext(run=run, lease=lease)
            final = await self.graph.ainvoke(start, config, context=context, **self._kwargs())
            return await self._structured(self._result(final, run.ledger, config), run)

    async def aset_caps(
        self, thread_id: str, caps: Mapping[str, Any], *, on_busy: OnBusy | None = None
    ) -> dict[str, Any]:
        """An operator's change to a thread's caps (``{"search": 10, "usd": "2"}``): a conversation's budget
        (``budget_scope="thread"``), raised or lowered, never below what it has spent; its next run starts
        from them. A thread paused at exhaustion takes ``aresume(thread_id, grant=...)`` instead. Returns the
        thread's caps (tools by name, dollars as strings)."""
        if self.checkpointer is None:
            raise ConfigError("a thread's caps live in its checkpoint: build the Agent with checkpointer=")
        async with self._owning(thread_id, on_busy):
            return await self._set_caps(thread_id, caps)

    async def _set_caps(self, thread_id: str, caps: Mapping[str, Any]) -> dict[str, Any]:
        config = self._config(thread_id)
        snapshot = await self.graph.aget_state(config)
        if not snapshot.values or not snapshot.values.get("ledger"):
            raise ConfigError(f"no checkpoint for thread {thread_id!r}")
        if getattr(snapshot, "interrupts", ()) or snapshot.next:
            raise ConfigError(
                f"thread {thread_id!r} is paused or mid-run: resume it (grant= raises a run paused at "
                "exhaustion) and change its caps after"
            )
        ledger = Ledger.from_snapshot(snapshot.values["ledger"])
        for key, cap in read_caps(caps, ledger).items():  # saved only when every one is set
            ledger.set_cap(key, cap, by="operator")
        await self.graph.aupdate_state(config, {"ledger": ledger.snapshot()})
        return {
            k.removeprefix("tool:"): str(v) if isinstance(v, Decimal) else v for k, v in ledger.limits.items()
        }

    async def _resumed(
        self, thread_id: str, account: Account | None, decisions: Any, grant: Any, seen: str | None
    ) -> tuple[Any, RunnableConfig, MeteredRun, dict[str, Any]]:
        """What a resume starts from: the graph's input, its config, the run rebuilt from the checkpoint's
        ledger (and account), and the state so far. ``seen`` is the checkpoint the request was made against:
        a decision or grant for a pause that another request answered meanwhile is refused."""
        if self.checkpointer is None:
            raise ConfigError("resume needs an Agent built with checkpointer=...")
        config = self._config(thread_id)
        snapshot = await self.graph.aget_state(config)
        if not snapshot.values:
            raise ConfigError(f"no checkpoint for thread {thread_id!r}")
        if (decisions is not None or grant is not None) and _checkpoint_of(snapshot) != seen:
            raise ConfigError(
                f"thread {thread_id!r} moved on while this request waited for it: another request already "
                "answered the pause this decision or grant was for, so it is not applied again. Read the "
                "thread's state (a new pause has its own request) and decide again"
            )
        account = _resumed_account(thread_id, snapshot.values.get("account"), account)
        run = self.config.new_run(Ledger.from_snapshot(snapshot.values.get("ledger") or {}, account=account))
        run.id = snapshot.values.get("run_id") or run.id
        interrupts = getattr(snapshot, "interrupts", ())
        if request_of(interrupts) is not None:
            if decisions is not None or grant is None:
                raise ConfigError(
                    f"thread {thread_id!r} is paused because a budget ran out: resume it with grant= (more of "
                    'each cap, e.g. {"search": 2, "usd": "0.50"}) or grant="decline"'
                )
            more = read_grant(grant, run.ledger)  # checked here, before the checkpoint moves
            return (
                Command(resume={"grant": plain(more)} if more else DECLINE),
                config,
                run,
                dict(snapshot.values),
            )
        if grant is not None:
            raise ConfigError(f"thread {thread_id!r} is not paused for budget: grant= does not apply")
        pending = bool(interrupts)
        if decisions is not None and not pending:
            raise ConfigError(f"thread {thread_id!r} has no tool calls awaiting a decision")
        if decisions is None and pending:
            raise ConfigError(
                f"thread {thread_id!r} has tool calls awaiting a decision: pass decisions= "
                '("approve", "reject", or {call_id: "approve" | "reject" | {"action": "edit", "arguments": {...}}})'
            )
        start: Any = Command(resume=decisions) if decisions is not None else None
        return start, config, run, dict(snapshot.values)

    def run(
        self, question: Question, *, thread_id: str | None = None, account: Account | None = None
    ) -> RunResult:
        """Synchronous :meth:`arun` (not from inside a running event loop: use ``await agent.arun``)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.arun(question, thread_id=thread_id, account=account))
        raise RuntimeError("Agent.run() was called inside an event loop; use 'await agent.arun(...)'")

    async def astream(
        self,
        question: Question | None = None,
        *,
        thread_id: str | None = None,
        account: Account | None = None,
        decisions: Any = None,
        grant: Any = None,
        on_busy: OnBusy | None = None,
    ) -> AsyncIterator[AgentEvent]:
        """Typed events as the run goes: text deltas (streaming backends), model turns, tool calls started and
        finished (with the units and cost charged), budget updates, verifier decisions, an approval request
        when the run pauses before tool calls, the final answer. It runs the same graph as :meth:`arun`, with
        the same accounting. With ``decisions=`` (and the paused ``thread_id``) it streams the resumed run,
        as :meth:`aresume` runs it."""
        resuming = decisions is not None or grant is not None
        if resuming and thread_id is None:
            raise ConfigError(
                "a streamed resume names its thread: astream(thread_id=..., decisions=... or grant=...)"
            )
        if not resuming and question is None:
            raise ConfigError(
                "astream needs a question, or thread_id= with decisions= or grant= to resume a paused run"
            )
        seen = await self._checkpoint_id(thread_id) if resuming and thread_id is not None else None
        async with self._owning(thread_id, on_busy) as lease:
            if resuming:
                assert thread_id is not None
                state, config, run, final = await self._resumed(thread_id, account, decisions, grant, seen)
            else:
                assert question is not None
                state, config, run = await self._start(question, thread_id, None, account)
                final = dict(state)
            async for event in self._stream(state, config, run, final, lease):
                yield event

    async def _stream(
        self,
        state: Any,
        config: RunnableConfig,
        run: MeteredRun,
        final: dict[str, Any],
        lease: ThreadLease | None,
    ) -> AsyncIterator[AgentEvent]:
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        context = RunContext(run=run, events=lambda event: queue.put_nowait(("event", event)), lease=lease)

        async def pump() -> None:
            try:
                async for chunk in self.graph.astream(
                    state, config, context=context, stream_mode="updates", **self._kwargs()
                ):
                    queue.put_nowait(("updates", chunk))
            except BaseException as exc:  # delivered to the consumer, raised there
                queue.put_nowait(("error", exc))
            finally:
                queue.put_nowait(("end", None))

        task = asyncio.create_task(pump())
        calls: dict[str, Any] = {}
        try:
            while True:
                kind, item = await queue.get()
                if kind == "end":
                    break
                if kind == "error":
                    raise item
                if kind == "event":
                    yield item
                    continue
                for event in events_of(item, final, calls, run.ledger):
                    yield event
        finally:
            if not task.done():  # the consumer stopped early: the run ends before the thread is given back
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        result = await self._structured(self._result(final, run.ledger, config), run)
        if result.pending:
            yield ApprovalRequest(thread_id=result.thread_id or "", calls=tuple(result.pending))
        if result.budget_request is not None:
            yield BudgetRequest(thread_id=result.thread_id or "", request=dict(result.budget_request))
        yield FinalAnswer(result=result)

    async def _structured(self, result: RunResult, run: MeteredRun) -> RunResult:
        """With ``output_type``: validate the answer; on failure, one metered retry that shows the error."""
        if self.output_type is None or result.pending:
            return result
        output, error = parse_output(self.output_type, result.answer)
        extra: list[Message] = []
        answer = result.answer
        if output is None and error is not None:
            question = next((m.content for m in reversed(result.messages) if m.role == "user"), "")
            output, error, extra, answer = await repair_output(
                run,
                self.output_type,
                self.config.system_prompt,
                question,
                result.answer,
                error,
                self.config.settings,
                self.config.answer_max_tokens,
            )
        return replace(
            result,
            answer=answer,
            output=output,
            output_error=error,
            messages=[*result.messages, *extra],
            usage=run.ledger.usage(),
            ledger=run.ledger.snapshot(),
        )

    def _result(self, final: dict[str, Any], live: Ledger, config: RunnableConfig) -> RunResult:
        reason = StopReason.of(final.get("stop"))
        pending = _pending(final.get("__interrupt__"))
        request = request_of(final.get("__interrupt__"))
        if pending:
            ids = ", ".join(c.id for c in pending)
            reason = StopReason("interrupted", message=f"tool calls await a decision: {ids}")
        elif request is not None:
            reason = StopReason(
                "interrupted",
                request["resource"],
                f"paused: {request['message'] or 'a budget ran out'} Resume with grant= or grant='decline'.",
            )
        elif final.get("phase") not in ("done", None) and not final.get("stop"):
            reason = StopReason("interrupted", message="the run was interrupted before it finished")
        result = RunResult.of(
            final.get("answer"),
            reason,
            live,
            final.get("messages", []),
            thread_id=(config.get("configurable") or {}).get("thread_id"),
            pending=pending,
            budget_request=request,
            details=_details(final),
        )
        if self.on_exhausted == "raise" and reason.kind == "budget_exhausted":
            raise BudgetExhausted(f"run stopped: {reason}", result)
        return result


def _check_budget_keys(budget: Budget, capped: Sequence[str]) -> None:
    """A tool cap that names none of the agent's tools (or budget keys) caps nothing: refuse it, with the
    closest name."""
    for name in budget.tool_calls:
        if name not in capped:
            raise ConfigError(
                f"the budget caps {name!r}, which is not a tool (or budget key) of this agent"
                f"{closest(name, capped)}; its tools: {', '.join(capped) or 'none'}"
            )


def _resumed_account(thread_id: str, saved: Any, given: Account | None) -> Account | None:
    """The account a resumed run spends from: the one its checkpoint names (rebuilt when not passed again);
    a different key is refused, so that a resume can never leave or swap its account."""
    if not saved:
        return given
    if given is None:
        return Account.from_description(saved)
    if given.key != saved.get("key") or given.window != saved.get("window"):
        raise ConfigError(
            f"thread {thread_id!r} was started with the account {saved.get('key')!r} ({saved.get('window')}); "
            f"it cannot resume on {given.key!r} ({given.window}): pass the same account, or none"
        )
    return given


def _checkpoint_of(snapshot: Any) -> str | None:
    """The id of the checkpoint a state snapshot was read from (None: the thread has none)."""
    configurable = (getattr(snapshot, "config", None) or {}).get("configurable") or {}
    found = configurable.get("checkpoint_id")
    return str(found) if found else None


def _pending(interrupts: Any) -> tuple[ToolCall, ...]:
    """The tool calls an approval interrupt is waiting on."""
    calls: list[ToolCall] = []
    for item in interrupts or ():
        value = getattr(item, "value", None)
        if isinstance(value, dict):
            calls += [ToolCall(c["id"], c["name"], dict(c["arguments"])) for c in value.get("pending", [])]
    return tuple(calls)


def _turn_control(
    cap: int | str | TurnControl | None, baseline: Sequence[int] | str | Path | None, planner: str
) -> TurnControl | None:
    """``turn_cap``: a number, ``"p75"`` or ``"dynamic"`` over ``turn_baseline`` (turn counts, or a results
    file whose episodes of the same planner are the uncapped baseline)."""
    if cap is None or isinstance(cap, TurnControl):
        return cap
    if isinstance(baseline, str | Path):
        baseline = baseline_turns(baseline, planner=planner)
    return turn_control(cap, baseline)


set_agent_factory(Agent)
