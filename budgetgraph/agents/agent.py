"""The Agent facade: ``run`` / ``arun`` / ``astream`` over the compiled graph, and the run result."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig

from .. import tracing
from ..budget.block import REGIME_POLICY, RegimePolicy
from ..budget.ledger import Ledger, Usage
from ..budget.limits import Budget
from ..budget.prices import PriceTable
from ..errors import BudgetExhausted, ConfigError
from ..models.base import ChatModel
from ..models.messages import Message, ModelSettings
from ..models.registry import infer_model
from ..tools.base import Tool
from .bats_graph import build_bats_graph
from .events import AgentEvent, BudgetUpdate, FinalAnswer, ModelTurn, ToolResult
from .graph import LEDGER_KEY, STREAM_KEY, LoopConfig, build_graph
from .plan_and_budget import PlanAndBudget
from .prompts import AnswerStyle, answer_now
from .prompts import system_prompt as build_system_prompt
from .state import AgentState

__all__ = ["Agent", "RunResult", "StopReason"]

PLANNERS = ("react", "tracker", "bats", "plan_and_budget")


@dataclass(frozen=True, slots=True)
class StopReason:
    """``kind``: answered | budget_exhausted | max_turns | context_full (the prompt filled the model's
    context window; the answer call then drops old tool results) | error; ``resource`` names the exhausted budget."""

    kind: str
    resource: str = ""
    message: str = ""

    def __str__(self) -> str:
        if self.kind == "budget_exhausted":
            return f"budget_exhausted: {self.resource.removeprefix('tool:')}"
        if self.kind == "error":
            return f"error: {self.message}"
        return self.kind


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a run produced and what it spent."""

    answer: str | None
    stop_reason: StopReason
    usage: Usage
    messages: Sequence[Message]
    ledger: dict[str, Any] = field(default_factory=dict)
    thread_id: str | None = None

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
        }


class Agent:
    """A budget-aware tool-using agent.

    ``planner="react"`` is the baseline that shows the model no budget; ``"tracker"`` adds the BATS budget
    tracker (regime policy in the system prompt, a ``<budget>`` block after each tool result); ``"bats"`` adds
    the plan checklist, the verifier (SUCCESS / CONTINUE / PIVOT) and answer selection (``bats_mode``:
    ``early_stop`` or ``full``); ``"plan_and_budget"`` splits the question and funds each part by credit.
    ``force_first_tool`` makes the first turn a tool call when tools are given (small models otherwise
    answer from memory); turn it off for agents that may rightly answer without tools.
    ``system_prompt`` replaces the built-in research-agent prompt (``instructions`` are appended to either) and
    ``regime_policy`` the search-oriented regime advice (``GENERIC_POLICY`` suits other tools).
    ``answer_style="short"`` asks for the shortest answer span (exact-match evaluations); the default
    ``"full"`` lets the answer be a sentence or two.
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
        max_attempts: int = 3,
        schedule: str = "linear",
        answer_style: AnswerStyle = "full",
    ) -> None:
        if planner not in PLANNERS:
            raise ConfigError(f"unknown planner {planner!r}; available here: {', '.join(PLANNERS)}")
        if on_exhausted not in ("answer", "raise"):
            raise ConfigError("on_exhausted must be 'answer' or 'raise'")
        names = [t.name for t in tools]
        if len(set(names)) != len(names):
            raise ConfigError(f"tool names must be unique, got {names}")
        self.model = infer_model(model)
        self.tools = list(tools)
        self.budget = Budget.parse(budget) if isinstance(budget, str) else (budget or Budget())
        self.planner = planner
        self.on_exhausted = on_exhausted
        self.config = LoopConfig(
            model=self.model,
            tools={t.name: t for t in self.tools},
            system_prompt=build_system_prompt(
                planner, instructions, system_prompt, regime_policy, answer_style
            ),
            show_budget=planner != "react",
            prices=prices or PriceTable(),
            settings=settings or ModelSettings(temperature=0.0),
            max_tokens=max_tokens,
            answer_max_tokens=answer_max_tokens,
            max_turns=max_turns,
            force_first_tool=force_first_tool,
            regime_policy=regime_policy,
            answer_nudge=answer_now(answer_style),
        )
        if self.budget.usd is not None:  # an unknown price with a dollar cap is an error before any spend
            self.config.prices.require_model_price(self.model.name, self.model.price)
        self.checkpointer = checkpointer
        self.schedule = schedule
        self.answer_style: AnswerStyle = answer_style
        uncompiled: Any = (
            build_bats_graph(self.config, mode=bats_mode, max_attempts=max_attempts)
            if planner == "bats"
            else build_graph(self.config)
        )
        self.graph = uncompiled.compile(
            checkpointer=checkpointer, interrupt_before=list(interrupt_before or []) or None
        )

    # -- running -------------------------------------------------------------------------------
    def _start(
        self, question: str, thread_id: str | None, ledger: Ledger | None
    ) -> tuple[Any, RunnableConfig, Ledger]:
        live = ledger or Ledger(self.budget)
        tid = thread_id or uuid.uuid4().hex
        config: RunnableConfig = {
            "configurable": {"thread_id": tid, LEDGER_KEY: live},
            "recursion_limit": 4 * self.config.max_turns + 10,
        }
        state: AgentState = {
            "messages": [Message.user(question)],
            "ledger": live.snapshot(),
            "phase": "act",
            "turns": 0,
        }
        return state, config, live

    async def _resume_input(self, thread_id: str) -> tuple[RunnableConfig, Ledger]:
        if self.checkpointer is None:
            raise ConfigError("resume needs an Agent built with checkpointer=...")
        probe: RunnableConfig = {"configurable": {"thread_id": thread_id}}
        snapshot = await self.graph.aget_state(probe)
        if not snapshot.values:
            raise ConfigError(f"no checkpoint for thread {thread_id!r}")
        live = Ledger.from_snapshot(snapshot.values.get("ledger") or {})
        config: RunnableConfig = {
            "configurable": {"thread_id": thread_id, LEDGER_KEY: live},
            "recursion_limit": 4 * self.config.max_turns + 10,
        }
        return config, live

    async def arun(
        self, question: str, *, thread_id: str | None = None, ledger: Ledger | None = None
    ) -> RunResult:
        """Run one question to its end. ``ledger`` lets a parent pass a child ledger."""
        if self.planner == "plan_and_budget":
            return await self._plan_and_budget(question, ledger or Ledger(self.budget))
        state, config, live = self._start(question, thread_id, ledger)
        attrs = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": f"budgetgraph.{self.planner}",
            "gen_ai.request.model": self.model.name,
            "budgetgraph.thread_id": config["configurable"]["thread_id"],
        }
        with tracing.span(f"invoke_agent {self.planner}", attrs) as current:
            final = await self.graph.ainvoke(state, config)
            result = self._result(final, live, config)
            usage = result.usage
            tracing.set_attributes(
                current,
                {
                    "gen_ai.usage.input_tokens": usage.input_tokens,
                    "gen_ai.usage.output_tokens": usage.output_tokens,
                    "budgetgraph.usd": float(usage.usd),
                    "budgetgraph.tool_calls": usage.total_tool_calls,
                    "budgetgraph.stop_reason": str(result.stop_reason),
                    **tracing.budget_attributes(live),
                },
            )
        return result

    async def aresume(self, thread_id: str) -> RunResult:
        """Continue a checkpointed run; the ledger continues from what was really spent."""
        config, live = await self._resume_input(thread_id)
        final = await self.graph.ainvoke(None, config)
        return self._result(final, live, config)

    def run(self, question: str, *, thread_id: str | None = None) -> RunResult:
        """Synchronous :meth:`arun` (not from inside a running event loop: use ``await agent.arun``)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.arun(question, thread_id=thread_id))
        raise RuntimeError("Agent.run() was called inside an event loop; use 'await agent.arun(...)'")

    async def astream(self, question: str, *, thread_id: str | None = None) -> AsyncIterator[AgentEvent]:
        """Typed events as the run goes: text deltas (streaming backends), model turns, tool calls started and
        finished (with the units and cost charged), budget updates, verifier decisions, the final answer."""
        state, config, live = self._start(question, thread_id, None)
        config["configurable"][STREAM_KEY] = True  # type: ignore[index]
        calls: dict[str, Any] = {}
        final: dict[str, Any] = dict(state)
        async for mode, chunk in self.graph.astream(state, config, stream_mode=["updates", "custom"]):
            if mode == "custom":
                yield chunk
                continue
            for node, update in chunk.items():
                if not isinstance(update, dict):
                    continue
                final.update({k: v for k, v in update.items() if k != "messages"})
                final["messages"] = final.get("messages", []) + list(update.get("messages", []))
                for m in update.get("messages", []):
                    if m.role == "assistant":
                        calls.update({c.id: c for c in m.tool_calls})
                        yield ModelTurn(message=m, node=node)
                    elif m.role == "tool":
                        call = calls.get(m.tool_call_id or "")
                        yield ToolResult(name=m.name or "", call=call, content=m.content)
                if "ledger" in update and node == "tools":
                    yield BudgetUpdate(ledger=update["ledger"], regime=live.regime())
        result = self._result(final, live, config)
        yield FinalAnswer(result=result)

    async def _plan_and_budget(self, question: str, live: Ledger) -> RunResult:
        def solver(share: Budget) -> Agent:
            return Agent(
                self.model,
                self.tools,
                share,
                planner="tracker",
                prices=self.config.prices,
                settings=self.config.settings,
                max_tokens=self.config.max_tokens,
                answer_max_tokens=self.config.answer_max_tokens,
                max_turns=self.config.max_turns,
                force_first_tool=self.config.force_first_tool,
                answer_style=self.answer_style,
            )

        answer, transcript, _plan = await PlanAndBudget(self.config, solver, self.schedule).run(
            question, live
        )
        return RunResult(answer, StopReason("answered"), live.usage(), transcript, live.snapshot())

    def _result(self, final: dict[str, Any], live: Ledger, config: RunnableConfig) -> RunResult:
        stop = final.get("stop") or {}
        if final.get("phase") not in ("done", None) and not stop:
            stop = {"kind": "interrupted", "message": "the run was interrupted before it finished"}
        reason = StopReason(stop.get("kind", "answered"), stop.get("resource", ""), stop.get("message", ""))
        result = RunResult(
            answer=final.get("answer"),
            stop_reason=reason,
            usage=live.usage(),
            messages=list(final.get("messages", [])),
            ledger=live.snapshot(),
            thread_id=(config.get("configurable") or {}).get("thread_id"),
        )
        if self.on_exhausted == "raise" and reason.kind == "budget_exhausted":
            raise BudgetExhausted(f"run stopped: {reason}", result)
        return result
