"""The planner registry: every planner the docs list, and the graph ``Agent`` runs for it.

``Agent.run``, ``arun``, ``astream``, ``aresume`` and the evaluation runner all run the graph built here, so a
planner has one accounting whichever way it is driven. ``plan_and_budget`` and ``orchestrator`` delegate to
sub-agents on child ledgers inside one node; ``mcts`` plans over costed problems, not free-form questions.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
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

__all__ = ["PLANNERS", "PlannerSpec", "build_planner_graph", "parse_planner", "planner_names"]

Delegate = Callable[[str, Ledger], Awaitable[tuple[Any, ...]]]
"""(answer, transcript, stop info) or those and the run's details."""


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
        details: dict[str, Any] = {}
        try:
            answer, transcript, info, *more = await delegate(question, run.ledger)
            details = dict(more[0]) if more else {}
        except Overrun as exc:
            answer, transcript, info = None, [], stop("overrun", exc.resource, str(exc))
        forget(run)
        return {
            "messages": transcript,
            "answer": answer,
            "stop": info,
            "details": details,
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
    from ..planners.bats_wording import wording
    from .bats_graph import build_bats_graph

    instructions, system_prompt, _policy = agent._prompt_args
    return build_bats_graph(
        agent.config,
        agent.bats,
        system=system_prompt,
        instructions=instructions,
        words=wording(agent.answer_style),
        key=agent.answer_key,
    )


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


def _consistency(agent: Agent) -> StateGraph[Any, Any]:
    from .consistency import delegate_for

    return _delegating_graph(agent.config, delegate_for(agent, "adaptive"))


def _majority(agent: Agent) -> StateGraph[Any, Any]:
    from .consistency import delegate_for

    return _delegating_graph(agent.config, delegate_for(agent, "never"))


def _best_of(agent: Agent) -> StateGraph[Any, Any]:
    from .consistency import delegate_for

    return _delegating_graph(agent.config, delegate_for(agent, "never", best_of=True))


def _sale(agent: Agent) -> StateGraph[Any, Any]:
    from .sale import EXECUTE_INSTRUCTIONS, Sale

    sale = Sale(
        agent.pool,
        lambda bidder, plan: agent.variant(
            agent.sample_planner, bidder.model, EXECUTE_INSTRUCTIONS.format(plan=plan)
        ),
        weights=agent.sale_weights,
        memory=agent.auction_memory,
        prices=agent.config.prices,
    )
    return _delegating_graph(agent.config, sale.run)


PLANNERS: dict[str, PlannerSpec] = {
    spec.name: spec
    for spec in (
        PlannerSpec("react", "the baseline: the model sees no budget", False, _loop),
        PlannerSpec("tracker", "BATS budget tracker: regime policy and a <budget> block", True, _loop),
        PlannerSpec(
            "react_nudge",
            "react with budget forcing: an early answer is met by the 'Wait, you still have budget' nudge",
            False,
            _loop,
        ),
        PlannerSpec(
            "bats", "plan checklist, verifier (SUCCESS / CONTINUE / PIVOT), answer selection", True, _bats
        ),
        PlannerSpec("plan_and_budget", "sub-questions funded by credit x schedule", True, _plan_and_budget),
        PlannerSpec(
            "orchestrator", "sub-agents chosen by knapsack, each on a child ledger", True, _orchestrator
        ),
        PlannerSpec(
            "consistency",
            "Adaptive-Consistency: episodes one at a time until the Beta/Dirichlet rule settles the vote",
            False,
            _consistency,
        ),
        PlannerSpec("majority", "majority vote over a fixed number of episodes", False, _majority),
        PlannerSpec(
            "best_of", "Best-of-N: a fixed number of episodes, an LLM judge picks the answer", False, _best_of
        ),
        PlannerSpec(
            "sale",
            "strategy auction: a pool of models bids with plans, cost minus value picks who executes",
            False,
            _sale,
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


_LABEL_OPTIONS = (
    "turn_cap",
    "baseline",
    "baseline_budget",
    "bats_mode",
    "max_attempts",
    "bats_rule",
    "bats_stop_on_exhausted",
    "bats_context",
    "bats_selection",
    "bats_layout",
    "block",
    "samples",
    "sample_planner",
    "sample_temperature",
    "pool",
    "pool_prices",
    "memory",
    "weights",
)


def parse_planner(label: str) -> tuple[str, dict[str, Any]]:
    """A planner label of a sweep: ``react`` or ``react[turn_cap=p75;baseline=runs/base.jsonl;baseline_budget=5]``
    (options separated by ``;``, since ``,`` separates planners). Returns the planner and its Agent options:
    ``turn_cap``, ``bats_mode``, ``max_attempts``, and the turn baseline (a results file, optionally only the
    episodes of one budget label) as ``turn_baseline`` turn counts."""
    name, bracket, rest = label.strip().partition("[")
    name = name.strip()
    if not bracket:
        return name, {}
    if not rest.endswith("]"):
        raise ConfigError(f"planner label {label!r}: options go in brackets, e.g. react[turn_cap=p75]")
    raw: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest[:-1].split(";"))):
        key, eq, value = part.partition("=")
        if not eq or key.strip() not in _LABEL_OPTIONS:
            raise ConfigError(
                f"planner label {label!r}: {part!r} is not one of {', '.join(_LABEL_OPTIONS)} as KEY=VALUE"
            )
        raw[key.strip()] = value.strip()
    options: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _CONVERT:
            target, convert = _CONVERT[key]
            options[target] = convert(label, key, value)
    if "baseline" in raw:
        from .turns import baseline_turns

        options["turn_baseline"] = baseline_turns(raw["baseline"], name, raw.get("baseline_budget"))
    if "pool" in raw:
        options["pool"] = _pool(label, raw["pool"], raw.get("pool_prices", ""))
    return name, options


def _pool(label: str, models: str, prices: str) -> list[Any]:
    """``pool=local:0.5b+local;pool_prices=0.05+0.15``: the SALE pool, cheapest first by price."""
    from ..models.registry import infer_model
    from .sale import Bidder

    specs = [m.strip() for m in models.split("+") if m.strip()]
    values = [p.strip() for p in prices.split("+") if p.strip()]
    if len(values) != len(specs):
        raise ConfigError(
            f"planner label {label!r}: pool_prices must give one $/Mtok price per pool model "
            f"({len(specs)} models, {len(values)} prices)"
        )
    return [Bidder(spec, infer_model(spec), float(v)) for spec, v in zip(specs, values, strict=True)]


def _weights(label: str, key: str, value: str) -> Any:
    from ..planners.sale import SaleWeights

    try:
        data = json.loads(Path(value).read_text(encoding="utf-8"))
        return SaleWeights(float(data["cost"]), float(data["entropy"]), dict(data.get("jury", {})))
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ConfigError(f"planner label {label!r}: cannot read SALE weights from {value}: {exc}") from None


def _flag(label: str, key: str, value: str) -> bool:
    return value.lower() in ("1", "true", "yes", "on")


def _text(label: str, key: str, value: str) -> str:
    return value


def _number(label: str, key: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"planner label {label!r}: {key} must be a number, got {value!r}") from None


def _cap(label: str, key: str, value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _whole(label: str, key: str, value: str) -> int:
    if not value.isdigit():
        raise ConfigError(f"planner label {label!r}: {key} must be a whole number, got {value!r}")
    return int(value)


_CONVERT: dict[str, tuple[str, Callable[[str, str, str], Any]]] = {
    "turn_cap": ("turn_cap", _cap),
    "bats_mode": ("bats_mode", _text),
    "bats_rule": ("bats_rule", _text),
    "bats_stop_on_exhausted": ("bats_stop_on_exhausted", _flag),
    "bats_context": ("bats_context", _text),
    "bats_selection": ("bats_selection", _text),
    "bats_layout": ("bats_layout", _text),
    "block": ("budget_block", _text),
    "max_attempts": ("max_attempts", _whole),
    "samples": ("samples", _whole),
    "sample_planner": ("sample_planner", _text),
    "sample_temperature": ("sample_temperature", _number),
    "memory": ("auction_memory", _text),
    "weights": ("sale_weights", _weights),
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
