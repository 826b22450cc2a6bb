"""The planner registry: every planner the docs list, and the graph ``Agent`` runs for it.

``Agent.run``, ``arun``, ``astream``, ``aresume`` and the evaluation runner all run the graph built here, so a
planner has one accounting whichever way it is driven. ``plan_and_budget`` and ``orchestrator`` delegate to
sub-agents on child ledgers inside one node; ``mcts`` plans over costed problems, not free-form questions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from ..budget.ledger import Ledger
from ..errors import ConfigError, Overrun
from ..models.messages import Message
from .graph import LoopConfig, build_graph
from .runtime import RunContext, forget, resolve_run, stop, user_messages
from .state import AgentState, StopInfo

if TYPE_CHECKING:
    from .agent import Agent

__all__ = ["PLANNERS", "PlannerSpec", "build_planner_graph", "planner_names"]

Delegate = Callable[[str, Ledger], Awaitable[tuple[str | None, list[Message], StopInfo]]]


@dataclass(frozen=True, slots=True)
class PlannerSpec:
    name: str
    summary: str
    shows_budget: bool
    build: Callable[[Agent], StateGraph[Any, Any]] | None
    """None: the planner does not run from ``Agent`` (``where`` says where it does)."""
    where: str = ""


def _delegating_graph(cfg: LoopConfig, delegate: Delegate) -> StateGraph[AgentState, RunContext]:
    """One node that runs ``delegate(question, ledger)`` on the run's ledger (sub-agents get child ledgers)."""

    async def solve(state: AgentState, runtime: Runtime[Any]) -> dict[str, Any]:
        run = resolve_run(state, runtime, cfg.new_run)
        question = user_messages(state)[-1].content
        try:
            answer, transcript, info = await delegate(question, run.ledger)
        except Overrun as exc:
            answer, transcript, info = None, [], stop("overrun", exc.resource, str(exc))
        forget(run)
        return {
            "messages": transcript,
            "answer": answer,
            "stop": info,
            "phase": "done",
            "run_id": run.id,
            "ledger": run.ledger.snapshot(),
        }

    graph: StateGraph[AgentState, RunContext] = StateGraph(AgentState, context_schema=RunContext)
    graph.add_node("solve", solve)
    graph.add_edge(START, "solve")
    graph.add_edge("solve", END)
    return graph


def _loop(agent: Agent) -> StateGraph[Any, Any]:
    return build_graph(agent.config)


def _bats(agent: Agent) -> StateGraph[Any, Any]:
    from .bats_graph import build_bats_graph

    return build_bats_graph(agent.config, mode=agent.bats_mode, max_attempts=agent.max_attempts)


def _plan_and_budget(agent: Agent) -> StateGraph[Any, Any]:
    from .plan_and_budget import PlanAndBudget

    async def delegate(question: str, ledger: Ledger) -> tuple[str | None, list[Message], StopInfo]:
        answer, transcript, _plan = await PlanAndBudget(agent.config, agent.sub_agent, agent.schedule).run(
            question, ledger
        )
        return answer, transcript[1:], stop("answered")

    return _delegating_graph(agent.config, delegate)


def _orchestrator(agent: Agent) -> StateGraph[Any, Any]:
    from .orchestrator import Orchestrator, SubAgent

    async def delegate(question: str, ledger: Ledger) -> tuple[str | None, list[Message], StopInfo]:
        team = [
            SubAgent(
                "researcher",
                "search and read documents to find facts: who, what, where, when, which",
                tools=agent.tools,
                model=agent.model,
                cost=1,
                value=2.0,
            ),
            SubAgent(
                "reasoner", "compare or combine facts already found, answer yes or no", cost=0, value=0.5
            ),
        ]
        orch = Orchestrator(
            agent.model, team, ledger.budget, prices=agent.config.prices, max_tokens=agent.config.max_tokens
        )
        result = await orch.arun(question, ledger=ledger)
        return result.answer, list(result.messages)[1:], stop("answered")

    return _delegating_graph(agent.config, delegate)


PLANNERS: dict[str, PlannerSpec] = {
    spec.name: spec
    for spec in (
        PlannerSpec("react", "the baseline: the model sees no budget", False, _loop),
        PlannerSpec("tracker", "BATS budget tracker: regime policy and a <budget> block", True, _loop),
        PlannerSpec(
            "bats", "plan checklist, verifier (SUCCESS / CONTINUE / PIVOT), answer selection", True, _bats
        ),
        PlannerSpec("plan_and_budget", "sub-questions funded by credit x schedule", True, _plan_and_budget),
        PlannerSpec(
            "orchestrator", "sub-agents chosen by knapsack, each on a child ledger", True, _orchestrator
        ),
        PlannerSpec(
            "mcts",
            "cost-augmented MCTS over costed action sequences",
            True,
            None,
            where="it plans over a costed planning problem, not a question: run it with "
            "'budgetgraph eval costplan --planner mcts', or call budgetgraph.planners.mcts.mcts_search "
            "with your own problem (actions, costs, goal)",
        ),
    )
}


def planner_names() -> tuple[str, ...]:
    return tuple(PLANNERS)


def build_planner_graph(agent: Agent, name: str) -> StateGraph[Any, Any]:
    spec = PLANNERS.get(name)
    if spec is None:
        raise ConfigError(f"unknown planner {name!r}; available: {', '.join(PLANNERS)}")
    if spec.build is None:
        raise ConfigError(f"planner {name!r} does not run from Agent: {spec.where}")
    return spec.build(agent)
