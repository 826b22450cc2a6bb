"""The Agent facade: ``run`` / ``arun`` / ``astream`` / ``aresume`` over one compiled graph, and the run result."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command
from pydantic import BaseModel

from .. import tracing
from ..budget.block import REGIME_POLICY, RegimePolicy
from ..budget.ledger import Ledger, Usage
from ..budget.limits import Budget, closest
from ..budget.prices import PriceTable
from ..budget.store import Account
from ..errors import BudgetExhausted, ConfigError
from ..meter import MeteredRun
from ..models.base import ChatModel
from ..models.langchain_messages import conversation, to_langchain
from ..models.messages import Message, ModelSettings, ToolCall
from ..models.registry import infer_model
from ..planners.bats import BATSOptions
from ..tools.base import Tool
from .auction_memory import AuctionMemory
from .events import AgentEvent, BudgetUpdate, FinalAnswer, ModelTurn, ToolResult
from .graph import LoopConfig
from .planners import PLANNERS, build_planner_graph
from .prompts import AnswerStyle, answer_now
from .prompts import system_prompt as build_system_prompt
from .runtime import RunContext
from .state import AgentState
from .structured import answer_nudge, dump, parse_output, repair_output, schema_instructions
from .turns import TurnControl, baseline_turns, turn_control

if TYPE_CHECKING:
    from ..planners.sale import SaleWeights
    from .sale import Bidder

__all__ = ["Agent", "RunResult", "StopReason"]


@dataclass(frozen=True, slots=True)
class StopReason:
    """``kind``: answered | budget_exhausted | max_turns | context_full (the prompt filled the model's
    context window; the answer call then drops old tool results) | overrun (a backend reported more than was
    reserved: ``resource``, and the message says reserved and reported) | interrupted | error; ``resource``
    names the exhausted budget."""

    kind: str
    resource: str = ""
    message: str = ""

    def __str__(self) -> str:
        if self.kind == "budget_exhausted":
            return f"budget_exhausted: {self.resource.removeprefix('tool:')}"
        if self.kind == "error":
            return f"error: {self.message}"
        if self.kind == "overrun":
            return f"overrun: {self.resource}"
        return self.kind


Question = str | Sequence[Any]
"""A question string, or a message history (``Message`` or LangChain ``BaseMessage``) ending with the user's turn."""


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
                    "tool_calls": [
                        {"id": c.id, "name": c.name, "arguments": dict(c.arguments)} for c in m.tool_calls
                    ],
                }
                for m in self.messages
            ],
            "output": dump(self.output),
            "output_error": self.output_error,
            "pending": [{"id": c.id, "name": c.name, "arguments": dict(c.arguments)} for c in self.pending],
        }


class Agent:
    """A budget-aware tool-using agent.

    ``planner`` is any planner of the registry (``budgetgraph.agents.planners.PLANNERS``): ``"react"`` is the
    baseline that shows the model no budget; ``"tracker"`` adds the BATS budget tracker (regime policy in the
    system prompt, a ``<budget>`` block after each tool result); ``"bats"`` adds the plan checklist, the
    verifier (SUCCESS / CONTINUE / PIVOT) and answer selection (``bats_mode``: ``early_stop`` or ``full``;
    ``bats_stop_on_exhausted``: stop at the first exhausted tool budget, as the paper does; ``bats_rule``:
    ``verifier`` (the verifier decides, with our guards) or ``fraction`` (our earlier 30% rule);
    ``bats_context``: ``paper`` (the summary replaces the trajectory after more than ten turns) or
    ``every_verify`` (at every verdict); ``bats_layout``: ``system`` (the checklist and the rest of the run's
    state in the system message) or ``tail`` (after the trajectory, so the prompt prefix is reused from call
    to call); ``bats_selection``: ``tier`` (the paper's C.4) or ``consistency``
    (attempts until Adaptive-Consistency settles their majority); ``max_attempts``: 3 in early-stop mode,
    unbounded in full mode and with consistency);
    ``budget_block``: ``per_tool`` (the paper's regime per tool; BATS's default) or ``scarcest`` (one regime
    from the scarcest resource; the default of the other planners);
    ``"plan_and_budget"`` splits the question and funds each part by credit; ``"orchestrator"`` delegates
    sub-questions to a researcher (these tools) and a reasoner on child ledgers.
    ``force_first_tool`` makes the first turn a tool call when tools are given (small models otherwise
    answer from memory); turn it off for agents that may rightly answer without tools.
    ``system_prompt`` replaces the built-in research-agent prompt (``instructions`` are appended to either) and
    ``regime_policy`` the search-oriented regime advice (``GENERIC_POLICY`` suits other tools).
    ``answer_style="short"`` asks for the shortest answer span (exact-match evaluations); the default
    ``"full"`` lets the answer be a sentence or two.
    ``turn_cap`` is turn control (papers.md section 7): a number, ``"p75"`` (that percentile of the model's
    turns in ``turn_baseline``: turn counts or a results file of the uncapped planner) or ``"dynamic"`` (a low
    cap the agent may ask to extend, each extension a journaled budget grant); every turn then carries
    "You have N turns left". It sets the budget's ``turns`` cap.
    ``budget_scope``: ``"run"`` (default) gives every ``arun`` a fresh budget, also on a ``thread_id`` that
    continues a conversation; ``"thread"`` makes the budget a conversation cap: with a checkpointer, each
    ``arun`` on a thread continues the ledger the thread's checkpoint holds.
    """

    def __init__(
        self,
        model: str | ChatModel = "local",
        tools: Sequence[Tool] = (),
        budget: Budget | str | None = None,
        *,
        planner: Literal["react", "tracker"] | str = "tracker",
        prices: PriceTable | None = None,
        instructions: str | None = None,
        system_prompt: str | None = None,
        regime_policy: RegimePolicy = REGIME_POLICY,
        settings: ModelSettings | None = None,
        max_tokens: int = 512,
        answer_max_tokens: int = 256,
        max_turns: int = 30,
        force_first_tool: bool = True,
        on_exhausted: Literal["answer", "raise"] = "answer",
        checkpointer: Any = None,
        interrupt_before: Sequence[str] | None = None,
        bats_mode: Literal["early_stop", "full"] = "early_stop",
        max_attempts: int | None = None,
        bats_stop_on_exhausted: bool = True,
        bats_rule: Literal["verifier", "fraction"] = "verifier",
        bats_context: Literal["paper", "every_verify"] = "paper",
        bats_selection: Literal["tier", "consistency"] = "tier",
        bats_layout: Literal["system", "tail"] = "system",
        budget_block: Literal["scarcest", "per_tool"] | None = None,
        schedule: str = "linear",
        answer_style: AnswerStyle = "full",
        budget_scope: Literal["run", "thread"] = "run",
        approve: bool | Sequence[str] = False,
        output_type: type[BaseModel] | None = None,
        turn_cap: int | str | TurnControl | None = None,
        turn_baseline: Sequence[int] | str | Path | None = None,
        samples: int = 5,
        sample_planner: str = "react",
        sample_temperature: float = 0.7,
        answer_key: Callable[[str | None], Hashable] | None = None,
        pool: Sequence[Bidder] | None = None,
        sale_weights: SaleWeights | None = None,
        auction_memory: AuctionMemory | str | Path | None = None,
    ) -> None:
        if planner not in PLANNERS:
            raise ConfigError(f"unknown planner {planner!r}; available: {', '.join(PLANNERS)}")
        if on_exhausted not in ("answer", "raise"):
            raise ConfigError("on_exhausted must be 'answer' or 'raise'")
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
        if output_type is not None and not (
            isinstance(output_type, type) and issubclass(output_type, BaseModel)
        ):
            raise ConfigError(f"output_type must be a pydantic model class, not {output_type!r}")
        self._strategies(planner, samples, sample_planner, sample_temperature, answer_key, pool)
        self.sale_weights = sale_weights
        self.auction_memory = (
            auction_memory
            if isinstance(auction_memory, AuctionMemory) or auction_memory is None
            else AuctionMemory(auction_memory)
        )
        self._prompt_args = (instructions, system_prompt, regime_policy)
        self.output_type = output_type
        if output_type is not None:
            instructions = "\n\n".join(p for p in (instructions, schema_instructions(output_type)) if p)
        self.model = infer_model(model)
        self.tools = list(tools)
        capped = list(dict.fromkeys(t.budget_key for t in tools))
        self.budget = Budget.parse(budget, capped) if isinstance(budget, str) else (budget or Budget())
        _check_budget_keys(self.budget, capped)
        self.turn_control = _turn_control(turn_cap, turn_baseline, planner)
        if self.turn_control is not None:
            if self.budget.turns is not None:
                raise ConfigError("give the turn cap once: turn_cap= or the budget's turns=, not both")
            self.budget = replace(self.budget, turns=self.turn_control.cap)
        self.planner = planner
        self.on_exhausted = on_exhausted
        self.budget_scope = budget_scope
        self.bats = BATSOptions(
            bats_mode,
            max_attempts,
            bats_stop_on_exhausted,
            bats_rule,
            bats_context,
            bats_selection,
            bats_layout,
        )
        block: Literal["scarcest", "per_tool"] = budget_block or (
            "per_tool" if planner == "bats" else "scarcest"
        )
        if block not in ("scarcest", "per_tool"):
            raise ConfigError(f"budget_block must be 'scarcest' or 'per_tool', not {budget_block!r}")
        self.schedule = schedule
        self.answer_style: AnswerStyle = answer_style
        self.config = LoopConfig(
            model=self.model,
            tools={t.name: t for t in self.tools},
            system_prompt=build_system_prompt(
                planner, instructions, system_prompt, regime_policy, answer_style, block == "per_tool"
            ),
            show_budget=PLANNERS[planner].shows_budget,
            budget=self.budget,
            prices=prices or PriceTable(),
            settings=settings or ModelSettings(temperature=0.0),
            max_tokens=max_tokens,
            answer_max_tokens=answer_max_tokens,
            max_turns=max_turns,
            force_first_tool=force_first_tool,
            regime_policy=regime_policy,
            answer_nudge=answer_now(answer_style) if output_type is None else answer_nudge(output_type),
            answer_schema=None if output_type is None else output_type.model_json_schema(),
            durable=checkpointer is not None,
            approve=needs,
            turn_control=self.turn_control,
            nudge=planner == "react_nudge",
            budget_block=block,
        )
        if self.budget.usd is not None:  # an unknown price with a dollar cap is an error before any spend
            self.config.prices.require_model_price(
                self.model.name, self.model.price, getattr(self.model, "provider", None)
            )
        self.checkpointer = _registered(checkpointer)
        self.graph = build_planner_graph(self, planner).compile(
            checkpointer=self.checkpointer, interrupt_before=list(interrupt_before or []) or None
        )

    def _strategies(
        self,
        planner: str,
        samples: int,
        sample_planner: str,
        sample_temperature: float,
        answer_key: Callable[[str | None], Hashable] | None,
        pool: Sequence[Bidder] | None,
    ) -> None:
        """The options of the planners that run other runs: consistency, majority and sale."""
        if sample_planner in ("consistency", "majority", "best_of", "sale") or sample_planner not in PLANNERS:
            raise ConfigError(
                f"sample_planner must be a single-run planner such as react, not {sample_planner!r}"
            )
        if not (isinstance(samples, int) and samples >= 1):
            raise ConfigError(f"samples must be a whole number >= 1, got {samples!r}")
        if planner == "sale" and not pool:
            raise ConfigError("planner 'sale' needs pool=[Bidder(name, model, price_per_mtok), ...]")
        self.samples, self.sample_planner = samples, sample_planner
        self.sample_temperature, self.answer_key = sample_temperature, answer_key
        self.pool = list(pool or [])

    def sampler(self) -> Agent:
        """The agent whose runs Adaptive-Consistency and majority voting sample: this agent's model, tools,
        prompts and settings with ``sample_planner`` and no budget of its own (each sample runs on a child of
        the run's ledger)."""
        return self.variant(self.sample_planner)

    def variant(
        self,
        planner: str,
        model: ChatModel | None = None,
        extra: str | None = None,
        budget: Budget | None = None,
    ) -> Agent:
        """This agent's tools, prompts, settings and BATS options with another planner (and model, and
        instructions added); with no ``budget`` of its own it runs on a child of the run's ledger."""
        instructions, system_prompt, regime_policy = self._prompt_args
        if extra:
            instructions = "\n\n".join(p for p in (instructions, extra) if p)
        return Agent(
            model or self.model,
            self.tools,
            budget or Budget(),
            planner=planner,
            prices=self.config.prices,
            instructions=instructions,
            system_prompt=system_prompt,
            regime_policy=regime_policy,
            settings=self.config.settings,
            max_tokens=self.config.max_tokens,
            answer_max_tokens=self.config.answer_max_tokens,
            max_turns=self.config.max_turns,
            force_first_tool=self.config.force_first_tool,
            answer_style=self.answer_style,
            turn_cap=self.turn_control,
            bats_mode=self.bats.mode,
            max_attempts=self.bats.max_attempts,
            bats_stop_on_exhausted=self.bats.stop_on_exhausted,
            bats_rule=self.bats.rule,
            bats_context=self.bats.context,
            bats_selection=self.bats.selection,
            bats_layout=self.bats.layout,
        )

    def sub_agent(self, budget: Budget) -> Agent:
        """plan_and_budget's sub-question solver: a tracker :meth:`variant` of this agent on ``budget``."""
        return self.variant("tracker", budget=budget)

    # -- running -------------------------------------------------------------------------------
    def _config(self, thread_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": thread_id}, "recursion_limit": 4 * self.config.max_turns + 10}

    def _kwargs(self) -> dict[str, Any]:
        # with a checkpointer, each step's checkpoint is written before the next starts (at most once)
        return {"durability": "sync"} if self.checkpointer is not None else {}

    async def _ledger_for(self, thread_id: str, ledger: Ledger | None, account: Account | None) -> Ledger:
        if ledger is not None:
            if account is not None:
                if ledger.account is not None and ledger.account is not account:
                    raise ConfigError("the ledger passed already has an account: pass one or the other")
                ledger.account = account
            return ledger
        if self.budget_scope == "thread":
            snapshot = await self.graph.aget_state(self._config(thread_id))
            saved = (snapshot.values or {}).get("ledger")
            if saved:
                return Ledger.from_snapshot(saved, account=account)
        return Ledger(self.budget, account=account)

    def _opening(self, question: Question) -> list[Message]:
        history = conversation(question)
        if len(history) > 1 and self.planner not in ("react", "tracker", "react_nudge"):
            raise ConfigError(
                f"a message history is supported by the react and tracker planners; {self.planner!r} takes one "
                "question (a string)"
            )
        return history

    async def _start(
        self, question: Question, thread_id: str | None, ledger: Ledger | None, account: Account | None = None
    ) -> tuple[AgentState, RunnableConfig, MeteredRun]:
        tid = thread_id or uuid.uuid4().hex
        run = self.config.new_run(await self._ledger_for(tid, ledger, account))
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
    ) -> RunResult:
        """Run one question to its end. ``question`` is a string, or a message history (budgetgraph or LangChain
        messages) ending with the user's turn. ``ledger`` lets a parent pass a child ledger; ``account`` (from
        a budget store) makes the run also spend from a budget shared across runs, processes and machines."""
        state, config, run = await self._start(question, thread_id, ledger, account)
        attrs = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": f"budgetgraph.{self.planner}",
            "gen_ai.request.model": self.model.name,
            "budgetgraph.thread_id": config["configurable"]["thread_id"],
        }
        with tracing.span(f"invoke_agent {self.planner}", attrs) as current:
            final = await self.graph.ainvoke(state, config, context=RunContext(run=run), **self._kwargs())
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
                    **tracing.budget_attributes(run.ledger),
                },
            )
        return result

    async def aresume(
        self, thread_id: str, *, account: Account | None = None, decisions: Any = None
    ) -> RunResult:
        """Continue a checkpointed run (after an interrupt or a crash) from what was really spent; a tool call
        that was in flight counts as spent and is not run again unless its tool is idempotent."""
        if self.checkpointer is None:
            raise ConfigError("resume needs an Agent built with checkpointer=...")
        config = self._config(thread_id)
        snapshot = await self.graph.aget_state(config)
        if not snapshot.values:
            raise ConfigError(f"no checkpoint for thread {thread_id!r}")
        account = _resumed_account(thread_id, snapshot.values.get("account"), account)
        run = self.config.new_run(Ledger.from_snapshot(snapshot.values.get("ledger") or {}, account=account))
        run.id = snapshot.values.get("run_id") or run.id
        pending = bool(snapshot.interrupts) if hasattr(snapshot, "interrupts") else False
        if decisions is not None and not pending:
            raise ConfigError(f"thread {thread_id!r} has no tool calls awaiting a decision")
        if decisions is None and pending:
            raise ConfigError(
                f"thread {thread_id!r} has tool calls awaiting a decision: pass decisions= "
                '("approve", "reject", or {call_id: "approve" | "reject" | {"action": "edit", "arguments": {...}}})'
            )
        start: Any = Command(resume=decisions) if decisions is not None else None
        final = await self.graph.ainvoke(start, config, context=RunContext(run=run), **self._kwargs())
        return await self._structured(self._result(final, run.ledger, config), run)

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
        self, question: Question, *, thread_id: str | None = None, account: Account | None = None
    ) -> AsyncIterator[AgentEvent]:
        """Typed events as the run goes: text deltas (streaming backends), model turns, tool calls started and
        finished (with the units and cost charged), budget updates, verifier decisions, the final answer. It
        runs the same graph as :meth:`arun`, with the same accounting."""
        state, config, run = await self._start(question, thread_id, None, account)
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        context = RunContext(run=run, events=lambda event: queue.put_nowait(("event", event)))

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
        final: dict[str, Any] = dict(state)
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
                for event in _events_of(item, final, calls, run.ledger):
                    yield event
        finally:
            if not task.done():
                task.cancel()
        result = await self._structured(self._result(final, run.ledger, config), run)
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
        stop = final.get("stop") or {}
        pending = _pending(final.get("__interrupt__"))
        if pending:
            ids = ", ".join(c.id for c in pending)
            stop = {"kind": "interrupted", "message": f"tool calls await a decision: {ids}"}
        elif final.get("phase") not in ("done", None) and not stop:
            stop = {"kind": "interrupted", "message": "the run was interrupted before it finished"}
        reason = StopReason(stop.get("kind", "answered"), stop.get("resource", ""), stop.get("message", ""))
        result = RunResult(
            answer=final.get("answer"),
            stop_reason=reason,
            usage=live.usage(),
            messages=list(final.get("messages", [])),
            ledger=live.snapshot(),
            thread_id=(config.get("configurable") or {}).get("thread_id"),
            pending=pending,
            timeline=list(live.journal),
            details=dict(final.get("details") or {}),
        )
        if self.on_exhausted == "raise" and reason.kind == "budget_exhausted":
            raise BudgetExhausted(f"run stopped: {reason}", result)
        return result


def _events_of(
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
                    ToolResult(name=m.name or "", call=calls.get(m.tool_call_id or ""), content=m.content)
                )
        if "ledger" in update and any(m.role == "tool" for m in update.get("messages", [])):
            events.append(
                BudgetUpdate(ledger=update["ledger"], regime=ledger.regime(), resources=ledger.status())
            )
    return events


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


def _pending(interrupts: Any) -> tuple[ToolCall, ...]:
    """The tool calls an approval interrupt is waiting on."""
    calls: list[ToolCall] = []
    for item in interrupts or ():
        value = getattr(item, "value", None)
        if isinstance(value, dict):
            calls += [ToolCall(c["id"], c["name"], dict(c["arguments"])) for c in value.get("pending", [])]
    return tuple(calls)


def _registered(checkpointer: Any) -> Any:
    """The checkpointer, its serializer told the state's types (Message, ToolCall), so a checkpoint loads
    under LangGraph's strict msgpack allowlist too (the default in future LangGraph versions)."""
    serde = getattr(checkpointer, "serde", None)
    allow = getattr(serde, "with_msgpack_allowlist", None)
    if callable(allow):
        checkpointer.serde = allow([Message, ToolCall])
        _quiet_registered_types()
    return checkpointer


class _RegisteredTypes(logging.Filter):
    """Drops LangGraph's "Deserializing unregistered type" warning for budgetgraph's own state types: they are
    registered (strict mode loads them), but LangGraph's permissive default warns about every type."""

    OURS = {(t.__module__, t.__name__) for t in (Message, ToolCall)}

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (
            str(record.msg).startswith("Deserializing unregistered type") and tuple(args[:2]) in self.OURS
        )


def _quiet_registered_types() -> None:
    log = logging.getLogger("langgraph.checkpoint.serde.jsonplus")
    if not any(isinstance(f, _RegisteredTypes) for f in log.filters):
        log.addFilter(_RegisteredTypes())


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
