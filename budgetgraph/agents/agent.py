"""The Agent facade: ``run`` / ``arun`` / ``astream`` / ``aresume`` over one compiled graph. What a planner does is in
its registry entry and its hooks; how a run starts, resumes and reads out is in ``runs``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

from pydantic import BaseModel

from ..budget.ledger import Ledger
from ..budget.limits import Budget
from ..budget.prices import PriceTable
from ..budget.store import Account
from ..errors import ConfigError
from ..models.base import ChatModel
from ..models.messages import ModelSettings
from ..models.registry import infer_model
from ..tools.base import Tool
from .assembly import check_arguments, recap, run_budget, sub_options, turn_control_of, with_need
from .checkpoint import registered
from .events import AgentEvent, FinalAnswer
from .loop.settings import LoopSettings
from .options import AgentOptions
from .planners import build_planner_graph
from .prompts import AnswerStyle, answer_now
from .prompts import system_prompt as build_system_prompt
from .registry import PlannerContext, PlannerSpec, get_planner, make_options
from .result import Question, RunResult, StopReason, SubRunner
from .runs import Runs
from .runtime import RunContext
from .streaming import events, run_span, traced
from .structured import answer_nudge, schema_instructions
from .threads import OnBusy, ThreadLease, ThreadPolicy, owning

__all__ = ["Agent", "Question", "RunResult", "StopReason"]


class Agent:
    """A budget-aware tool-using agent: a model, tools, a budget, a ``planner`` from the registry
    (``budgetgraph.agents.PLANNERS``; ``"tracker"`` by default, ``"react"`` is the baseline that shows the
    model no budget) and its ``options`` (the planner's options class: ``BATSOptions(mode="full")``,
    ``SamplingOptions(samples=8)``, ``AgentOptions(turn_cap=5)``; see docs/planners.md).

    ``budget`` is every run's unless a run is given its own (``arun(q, budget="search=1")``).
    ``system_prompt`` replaces the built-in research-agent prompt (``instructions`` are appended to either).
    ``answer_style="short"`` asks for the shortest answer span (exact-match evaluations); the default
    ``"full"`` lets the answer be a sentence or two. ``on_exhausted="raise"`` raises
    :class:`~budgetgraph.errors.BudgetExhausted` instead of returning the best answer; ``"pause"`` (needs a
    checkpointer) pauses the run where a budget runs out with a budget request, and ``aresume(thread_id,
    grant={...})`` goes on, in this process or another. ``budget_scope``: ``"run"`` (default) gives every
    ``arun`` a fresh budget, also on a ``thread_id`` that continues a conversation; ``"thread"`` makes the
    budget a conversation cap (needs a checkpointer). ``approve`` names tools (or True: all) whose calls wait
    for a human decision. ``output_type`` validates the answer as a pydantic model. ``threads`` says what a
    second request on a busy thread does (:class:`ThreadPolicy`: ``on_busy="reject"`` raises
    :class:`~budgetgraph.errors.ThreadBusy`, ``"enqueue"`` waits its turn); a run, resume or cap change on a
    named thread of a checkpointer owns the thread while it works.
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
        self.options = opts = make_options(self.spec, options, what="option")
        needs = frozenset({"*"} if approve is True else () if approve is False else approve)
        check_arguments(
            tools,
            on_exhausted=on_exhausted,
            budget_scope=budget_scope,
            answer_style=answer_style,
            checkpointer=checkpointer,
            approve=needs,
            output_type=output_type,
        )
        self.threads = ThreadPolicy.of(threads)
        self.planner, self.answer_style = planner, answer_style
        self._prompt_args = (instructions, system_prompt)
        if output_type is not None:
            instructions = "\n\n".join(p for p in (instructions, schema_instructions(output_type)) if p)
        self.model = infer_model(model)
        self.tools = list(tools)
        self.prices = prices or PriceTable()
        self.turn_control = turn_control_of(opts.turn_cap, opts.turn_baseline, planner)
        self.budget = run_budget(budget, self.tools, self.turn_control, self.model, self.prices)
        block = opts.budget_block or self.spec.budget_block
        names = [t.name for t in self.tools]
        self.settings = LoopSettings(
            model=self.model,
            tools={t.name: t for t in self.tools},
            system_prompt=build_system_prompt(
                self.spec.shows_budget and opts.budget_intro,
                with_need(instructions, opts.budget_stop, names),
                system_prompt,
                opts.regime_policy,
                answer_style,
                block == "per_tool",
            ),
            budget=self.budget,
            prices=self.prices,
            settings=settings or ModelSettings(temperature=0.0),
            max_tokens=max_tokens,
            answer_max_tokens=answer_max_tokens,
            max_turns=max_turns,
            durable=checkpointer is not None,
            answer_nudge=answer_now(answer_style) if output_type is None else answer_nudge(output_type),
            answer_schema=None if output_type is None else output_type.model_json_schema(),
        )
        self.checkpointer = registered(checkpointer)
        context = PlannerContext(
            name=planner,
            settings=self.settings,
            options=opts,
            model=self.model,
            tools=self.tools,
            spawn=self.spawn,
            instructions=with_need(self._prompt_args[0], opts.budget_stop, names),
            system_prompt=system_prompt,
            answer_style=answer_style,
            shows_budget=self.spec.shows_budget,
            block=block,
            turn_control=self.turn_control,
            approve=needs,
            pause=on_exhausted == "pause",
        )
        self.graph = build_planner_graph(context).compile(
            checkpointer=self.checkpointer, interrupt_before=list(opts.interrupt_before) or None
        )
        if on_exhausted == "pause" and "pause" not in self.graph.nodes:
            raise ConfigError(
                f"the {planner!r} planner cannot pause at exhaustion: its sub-runs have budgets of their own; use "
                "a loop planner (react, tracker, react_nudge, bats), or on_exhausted='answer'"
            )
        self._runs = Runs(
            self.graph,
            self.settings,
            planner,
            self.spec.takes_history,
            self.checkpointer,
            budget_scope,
            on_exhausted,
            output_type,
        )

    def spawn(
        self,
        planner: str,
        *,
        model: ChatModel | None = None,
        extra: str | None = None,
        budget: Budget | None = None,
        options: AgentOptions | None = None,
        tools: Sequence[Tool] | None = None,
        prices: PriceTable | None = None,
    ) -> SubRunner:
        """A sub-run like this agent (its tools, prompts, settings, turn control and common options) with
        another planner (a single-run one), and optionally another model, ``extra`` instructions, a budget
        of its own, the planner's options, other tools and prices; with no budget it runs on the child ledger
        it is given."""
        chosen = sub_options(self.options, planner, options, self.turn_control)
        instructions, system_prompt = self._prompt_args
        if extra:
            instructions = "\n\n".join(p for p in (instructions, extra) if p)
        s = self.settings
        return Agent(
            model or self.model,
            self.tools if tools is None else tools,
            budget or Budget(),
            planner=planner,
            options=chosen,
            prices=prices or self.prices,
            instructions=instructions,
            system_prompt=system_prompt,
            settings=s.settings,
            max_tokens=s.max_tokens,
            answer_max_tokens=s.answer_max_tokens,
            max_turns=s.max_turns,
            answer_style=self.answer_style,
        )

    # -- running -------------------------------------------------------------------------------
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

    def _budget(self, budget: Budget | str | None) -> Budget:
        return (
            self.budget
            if budget is None
            else run_budget(budget, self.tools, self.turn_control, self.model, self.prices)
        )

    async def arun(
        self,
        question: Question,
        *,
        thread_id: str | None = None,
        ledger: Ledger | None = None,
        account: Account | None = None,
        budget: Budget | str | None = None,
        on_busy: OnBusy | None = None,
    ) -> RunResult:
        """Run one question to its end. ``question`` is a string, or a message history (budgetgraph or LangChain
        messages) ending with the user's turn. ``budget`` caps this run (the agent's by default); ``ledger``
        lets a parent pass a child ledger; ``account`` (from a budget store) makes the run also spend from a
        budget shared across runs, processes and machines. ``on_busy`` overrides the agent's
        :class:`ThreadPolicy` for this call."""
        capped = self._budget(budget)
        async with self._owning(thread_id, on_busy) as lease:
            state, config, run = await self._runs.start(question, thread_id, ledger, account, capped)
            with run_span(self._runs, config, self.model.name) as span:
                context = RunContext(run=run, lease=lease)
                final = await self.graph.ainvoke(state, config, context=context, **self._runs.kwargs())
                result = await self._runs.structured(self._runs.result(final, run.ledger, config), run)
                return traced(span, result, self._runs, run)

    async def aresume(
        self,
        thread_id: str,
        *,
        account: Account | None = None,
        decisions: Any = None,
        grant: Any = None,
        on_busy: OnBusy | None = None,
        budget: Budget | str | None = None,
    ) -> RunResult:
        """Continue a checkpointed run (after an interrupt or a crash) from what was really spent; a tool call
        that was in flight counts as spent and is not run again unless its tool is idempotent. A run paused
        for tool approval takes ``decisions=``; one paused at exhaustion takes ``grant=``: more of each cap
        (``{"search": 2, "usd": "0.50"}``) or ``"decline"``. A decision or grant is applied once: one that
        waited while another request answered the same pause is refused. ``budget`` sets the resumed run's
        caps (of the resources it caps, never below what is spent)."""
        seen = await self._runs.checkpoint_id(thread_id)
        async with self._owning(thread_id, on_busy) as lease:
            start, config, run, _ = await self._runs.resumed(thread_id, account, decisions, grant, seen)
            if budget is not None:
                recap(run.ledger, self._budget(budget))
            with run_span(self._runs, config, self.model.name) as span:
                context = RunContext(run=run, lease=lease)
                final = await self.graph.ainvoke(start, config, context=context, **self._runs.kwargs())
                result = await self._runs.structured(self._runs.result(final, run.ledger, config), run)
                return traced(span, result, self._runs, run)

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
            return await self._runs.set_caps(thread_id, caps)

    def run(
        self,
        question: Question,
        *,
        thread_id: str | None = None,
        account: Account | None = None,
        budget: Budget | str | None = None,
    ) -> RunResult:
        """Synchronous :meth:`arun` (not from inside a running event loop: use ``await agent.arun``)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.arun(question, thread_id=thread_id, account=account, budget=budget))
        raise RuntimeError("Agent.run() was called inside an event loop; use 'await agent.arun(...)'")

    async def astream(
        self,
        question: Question | None = None,
        *,
        thread_id: str | None = None,
        account: Account | None = None,
        decisions: Any = None,
        grant: Any = None,
        budget: Budget | str | None = None,
        on_busy: OnBusy | None = None,
    ) -> AsyncIterator[AgentEvent]:
        """Typed events as the run goes: text deltas (streaming backends), model turns, tool calls started and
        finished (with the units and cost charged), budget updates, verifier decisions, an approval request
        when the run pauses before tool calls, the final answer. It runs the same graph as :meth:`arun`, with
        the same accounting. With ``decisions=`` or ``grant=`` (and the paused ``thread_id``) it streams the
        resumed run, as :meth:`aresume` runs it."""
        resuming = decisions is not None or grant is not None
        if resuming and thread_id is None:
            raise ConfigError(
                "a streamed resume names its thread: astream(thread_id=..., decisions=... or grant=...)"
            )
        if not resuming and question is None:
            raise ConfigError(
                "astream needs a question, or thread_id= with decisions= or grant= to resume a paused run"
            )
        capped = self._budget(budget)
        seen = await self._runs.checkpoint_id(thread_id) if resuming and thread_id is not None else None
        async with self._owning(thread_id, on_busy) as lease:
            if resuming:
                assert thread_id is not None
                state, config, run, final = await self._runs.resumed(
                    thread_id, account, decisions, grant, seen
                )
            else:
                assert question is not None
                state, config, run = await self._runs.start(question, thread_id, None, account, capped)
                final = dict(state)
            with run_span(self._runs, config, self.model.name) as span:
                async for event in events(self._runs, state, config, run, final, lease):
                    if isinstance(event, FinalAnswer):
                        traced(span, event.result, self._runs, run)
                    yield event
