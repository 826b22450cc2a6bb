"""What the delegating planners share: the one-node graph that runs a delegate on the run's ledger, and the
one metered one-shot ask their own model calls (plan, synthesize, judge) go through."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from ..budget.ledger import Ledger
from ..budget.limits import TOOL_PREFIX, Amount, Budget, tool_key
from ..budget.prices import PriceTable
from ..errors import BudgetExceeded, ModelError, Overrun
from ..meter import ModelMeter
from ..models.base import ChatModel
from ..models.messages import Message, ModelResponse, ModelSettings, ToolSchema
from ..planners.allocation import allocate
from ..tools.base import Tool
from .loop.settings import LoopSettings
from .result import Delegated, RunResult, StopReason
from .runtime import RunContext, forget, resolve_run, user_messages
from .state import AgentState

__all__ = [
    "SYNTHESIS_INPUT",
    "Delegate",
    "ask_once",
    "child_shares",
    "delegating_graph",
    "hold_synthesis",
    "raise_overrun",
]

SYNTHESIS_INPUT = 512
"""Input tokens held for a delegating planner's synthesis call (its prompt is the sub-answers: short)."""

Delegate = Callable[[str, Ledger], Awaitable[Delegated]]
"""A delegating planner's work: the question and the run's ledger (sub-runs get children of it)."""


def delegating_graph(cfg: LoopSettings, delegate: Delegate) -> StateGraph[AgentState, RunContext]:
    """One node that runs ``delegate(question, ledger)`` on the run's ledger; an overrun ends the run."""

    async def solve(state: AgentState, runtime: Runtime[Any]) -> dict[str, Any]:
        run = resolve_run(state, runtime, cfg.new_run)
        question = user_messages(state)[-1].content
        try:
            out = await delegate(question, run.ledger)
        except Overrun as exc:
            out = Delegated(None, (), StopReason("overrun", exc.resource, str(exc)))
        forget(run)
        return {
            "messages": list(out.transcript),
            "answer": out.answer,
            "stop": out.stop.info(),
            "details": dict(out.details),
            "phase": "done",
            "run_id": run.id,
            "ledger": run.ledger.snapshot(),
        }

    graph: StateGraph[AgentState, RunContext] = StateGraph(AgentState, context_schema=RunContext)
    graph.add_node("solve", solve)
    graph.add_edge(START, "solve")
    graph.add_edge("solve", END)
    return graph


async def ask_once(
    meter: ModelMeter,
    messages: Sequence[Message],
    *,
    role: str,
    max_tokens: int,
    settings: ModelSettings | None = None,
    tool: ToolSchema | None = None,
) -> ModelResponse | None:
    """:meth:`ModelMeter.ask`, None when the budget cannot pay for it or the backend fails (an overrun is
    never caught: it ends the run)."""
    try:
        return await meter.ask(messages, role=role, max_tokens=max_tokens, settings=settings, tool=tool)
    except (BudgetExceeded, ModelError):
        return None


def hold_synthesis(model: ChatModel, ledger: Ledger, prices: PriceTable, max_tokens: int) -> None:
    """Hold back the final synthesis call (``SYNTHESIS_INPUT`` in, ``max_tokens`` out), so that sub-runs can
    never spend what the answer needs (rule 3)."""
    ModelMeter(model, ledger, prices).set_hold(0, max_tokens, input_reserve=SYNTHESIS_INPUT)


def child_shares(
    ledger: Ledger, credits: Sequence[float], schedule: str = "constant", tools: Sequence[Tool] | None = None
) -> list[Budget]:
    """The one child-share rule: each capped resource the children can touch (every cap but other tools':
    with ``tools``, only those tools' caps) less the answer hold, split by ``credits`` x ``schedule`` so that
    the shares add up exactly (whole units; dollars to the micro-dollar). ``seconds`` is never split: a child
    shares its parent's clock and runs under the parent's deadline."""
    mine = None if tools is None else {tool_key(t.budget_key) for t in tools}
    shares: list[dict[str, Amount]] = [{} for _ in credits]
    for key in ledger.limits:
        left = ledger.remaining(key)
        if (
            left is None
            or key == "seconds"
            or (mine is not None and key.startswith(TOOL_PREFIX) and key not in mine)
        ):
            continue
        hold = ledger.hold.get(key, 0)
        if isinstance(left, Decimal):
            micros = int((left - Decimal(str(hold))) * 1_000_000)
            for i, part in enumerate(allocate(max(micros, 0), credits, schedule)):
                shares[i][key] = Decimal(part) / 1_000_000
        else:
            for i, part in enumerate(allocate(max(int(left) - int(hold), 0), credits, schedule)):
                shares[i][key] = part
    return [Budget.from_limits(s) for s in shares]


def raise_overrun(result: RunResult) -> None:
    """A sub-run whose backend overran ends the whole run (rule 5: an overrun is loud)."""
    if result.stop_reason.kind == "overrun":
        raise Overrun(result.stop_reason.resource, "its reservation", result.stop_reason.message)
