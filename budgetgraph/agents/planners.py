"""The built-in planners, each registered once with its builder, options class and traits; and the planner
label grammar of a sweep (``react[turn_cap=p75]``), which asks the registry for each planner's options.

``Agent.run``, ``arun``, ``astream``, ``aresume`` and the evaluation runner all run the graph built here, so a
planner has one accounting whichever way it is driven.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from langgraph.graph import StateGraph

from .._files import loads, read_text
from ..errors import ConfigError
from .delegating import delegating_graph
from .options import (
    LEGACY_KEYWORDS,
    AgentOptions,
    BATSOptions,
    MCTSOptions,
    PlanAndBudgetOptions,
    SaleOptions,
    SamplingOptions,
    field_kind,
    option_names,
)
from .registry import (
    PLANNERS,
    PlannerContext,
    PlannerSpec,
    get_planner,
    make_options,
    planner_names,
    register_planner,
)
from .result import SubRunner

__all__ = [
    "PLANNERS",
    "PlannerSpec",
    "build_planner_graph",
    "parse_planner",
    "planner_names",
    "planner_options",
]


def _loop(ctx: PlannerContext) -> StateGraph[Any, Any]:
    return ctx.loop()


def _nudged(ctx: PlannerContext) -> StateGraph[Any, Any]:
    from .loop.features import Nudge

    return ctx.loop(Nudge())


def _bats(ctx: PlannerContext) -> StateGraph[Any, Any]:
    from .bats import bats_graph

    return bats_graph(ctx)


def _plan_and_budget(ctx: PlannerContext) -> StateGraph[Any, Any]:
    from .plan_and_budget import PlanAndBudget

    options = ctx.options
    assert isinstance(options, PlanAndBudgetOptions)
    solver = PlanAndBudget(ctx.settings, lambda budget: ctx.spawn("tracker", budget=budget), options.schedule)
    return delegating_graph(ctx.settings, solver.delegate)


def _orchestrator(ctx: PlannerContext) -> StateGraph[Any, Any]:
    from .orchestrator import Orchestrator, SubAgent

    team = [
        SubAgent(
            "researcher",
            "search and read documents to find facts: who, what, where, when, which",
            tools=ctx.tools,
            model=ctx.model,
            cost=1,
            value=2.0,
        ),
        SubAgent("reasoner", "compare or combine facts already found, answer yes or no", cost=0, value=0.5),
    ]

    def runner(model: Any, tools: Any = (), budget: Any = None, **kw: Any) -> SubRunner:
        return ctx.spawn(
            kw.get("planner", "tracker"), model=model, tools=tools, budget=budget, prices=kw.get("prices")
        )

    settings = ctx.settings
    orch = Orchestrator(
        ctx.model,
        team,
        settings.budget,
        runner=runner,
        prices=settings.prices,
        max_tokens=settings.max_tokens,
    )
    return delegating_graph(settings, orch.delegate)


def _sampling(rule: str, best_of: bool = False) -> Callable[[PlannerContext], StateGraph[Any, Any]]:
    def build(ctx: PlannerContext) -> StateGraph[Any, Any]:
        from .consistency import Sampler

        options = ctx.options
        assert isinstance(options, SamplingOptions)
        sampler = ctx.spawn(options.sample_planner, options=options.sample_options)
        return delegating_graph(ctx.settings, Sampler(ctx.settings, sampler, options, rule, best_of).delegate)

    return build


def _single_call(ctx: PlannerContext) -> StateGraph[Any, Any]:
    from .single_call import single_call_graph

    return single_call_graph(ctx)


def _mcts(ctx: PlannerContext) -> StateGraph[Any, Any]:
    from .mcts_graph import mcts_graph

    return mcts_graph(ctx)


def _mcts_uniform(ctx: PlannerContext) -> StateGraph[Any, Any]:
    from .mcts_graph import mcts_graph

    assert isinstance(ctx.options, MCTSOptions)
    return mcts_graph(replace(ctx, options=replace(ctx.options, prior="uniform")))


def _sale(ctx: PlannerContext) -> StateGraph[Any, Any]:
    from .auction_memory import AuctionMemory
    from .sale import EXECUTE_INSTRUCTIONS, Sale

    options = ctx.options
    assert isinstance(options, SaleOptions)
    memory = options.memory
    sale = Sale(
        options.pool,
        lambda bidder, plan: ctx.spawn(
            options.sample_planner,
            model=bidder.model,
            extra=EXECUTE_INSTRUCTIONS.format(plan=plan),
            options=options.sample_options,
        ),
        weights=options.weights,
        memory=memory if isinstance(memory, AuctionMemory) or memory is None else AuctionMemory(memory),
        prices=ctx.settings.prices,
    )
    return delegating_graph(ctx.settings, sale.run)


def _register_builtins() -> None:
    every = ("research", "code", "planning")
    for spec in (
        PlannerSpec(
            "react", "the baseline: the model sees no budget", _loop, takes_history=True, kinds=every
        ),
        PlannerSpec(
            "tracker",
            "BATS budget tracker: regime policy and a <budget> block",
            _loop,
            shows_budget=True,
            takes_history=True,
            kinds=every,
        ),
        PlannerSpec(
            "react_nudge",
            "react with budget forcing: an early answer is met by the 'Wait, you still have budget' nudge",
            _nudged,
            takes_history=True,
        ),
        PlannerSpec(
            "bats",
            "plan checklist, verifier (SUCCESS / CONTINUE / PIVOT), answer selection",
            _bats,
            BATSOptions,
            shows_budget=True,
            budget_block="per_tool",
            prompt_modules=(
                "budgetgraph.agents.bats.acting",
                "budgetgraph.agents.bats.attempts",
                "budgetgraph.planners.bats",
                "budgetgraph.planners.bats_wording",
                "budgetgraph.budget.tool_block",
            ),
            kinds=("research", "code"),
        ),
        PlannerSpec(
            "plan_and_budget",
            "sub-questions funded by credit x schedule",
            _plan_and_budget,
            PlanAndBudgetOptions,
            shows_budget=True,
            runs_sub_agents=True,
            prompt_modules=("budgetgraph.agents.plan_and_budget",),
            kinds=("research", "code"),
        ),
        PlannerSpec(
            "orchestrator",
            "sub-agents chosen by knapsack, each on a child ledger",
            _orchestrator,
            shows_budget=True,
            runs_sub_agents=True,
            prompt_modules=("budgetgraph.agents.orchestrator",),
            kinds=("research", "code"),
        ),
        PlannerSpec(
            "consistency",
            "Adaptive-Consistency: episodes one at a time until the Beta/Dirichlet rule settles the vote",
            _sampling("adaptive"),
            SamplingOptions,
            runs_sub_agents=True,
        ),
        PlannerSpec(
            "majority",
            "majority vote over a fixed number of episodes",
            _sampling("never"),
            SamplingOptions,
            runs_sub_agents=True,
        ),
        PlannerSpec(
            "best_of",
            "Best-of-N: a fixed number of episodes, an LLM judge picks the answer",
            _sampling("never", best_of=True),
            SamplingOptions,
            runs_sub_agents=True,
            prompt_modules=("budgetgraph.planners.bats",),  # the judge's prompt is BATS's selection prompt
        ),
        PlannerSpec(
            "sale",
            "strategy auction: a pool of models bids with plans, cost minus value picks who executes",
            _sale,
            SaleOptions,
            runs_sub_agents=True,
            prompt_modules=("budgetgraph.agents.sale",),
        ),
        PlannerSpec(
            "mcts",
            "cost-augmented MCTS over a costed world (MCTSOptions(world=...); the model scores the tools as the prior)",
            _mcts,
            MCTSOptions,
            shows_budget=True,
            kinds=("planning",),
        ),
        PlannerSpec(
            "mcts-uniform",
            "mcts with a uniform prior: no model call at all",
            _mcts_uniform,
            MCTSOptions,
            shows_budget=True,
            kinds=("planning",),
        ),
        PlannerSpec(
            "single_call",
            "one model call; the tool calls it makes are the answer, recorded and charged, never run",
            _single_call,
            takes_history=True,
            kinds=("single_call",),
        ),
    ):
        register_planner(replace(spec, builtin=True))


_register_builtins()

# -- the planner label grammar ---------------------------------------------------------------------
_ALIASES = {"block": "budget_block", "memory": "auction_memory", "weights": "sale_weights"}
"""Short label keys of earlier sweeps, as ``Agent`` keywords."""
_SPECIAL = ("baseline", "baseline_budget", "pool", "pool_prices")


def _label_keys(name: str) -> tuple[str, ...]:
    """The keys a label of planner ``name`` may set: its options' fields, their earlier keyword names and the
    short aliases (every key a results file written before may hold)."""
    spec = _spec_or_none(name)
    fields = set(option_names(spec.options)) if spec is not None else set(option_names(AgentOptions))
    legacy = {k for k, v in LEGACY_KEYWORDS.items() if v in fields or spec is None or spec.runs_sub_agents}
    aliases = {k for k, v in _ALIASES.items() if LEGACY_KEYWORDS[v] in fields or spec is None}
    return tuple(sorted(fields | legacy | aliases | set(_SPECIAL)))


def _spec_or_none(name: str) -> PlannerSpec | None:
    return PLANNERS.get(name)


def parse_planner(label: str) -> tuple[str, dict[str, Any]]:
    """A planner label of a sweep: ``react`` or ``react[turn_cap=p75;baseline=runs/base.jsonl;baseline_budget=5]``
    (options separated by ``;``, since ``,`` separates planners). Returns the planner and its options as
    ``Agent`` keywords (see :func:`planner_options` for the options object); the turn baseline (a results
    file, optionally only the episodes of one budget label) becomes ``turn_baseline`` turn counts."""
    name, bracket, rest = label.strip().partition("[")
    name = name.strip()
    if not bracket:
        return name, {}
    if not rest.endswith("]"):
        raise ConfigError(f"planner label {label!r}: options go in brackets, e.g. react[turn_cap=p75]")
    keys = _label_keys(name)
    raw: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest[:-1].split(";"))):
        key, eq, value = part.partition("=")
        if not eq or key.strip() not in keys:
            raise ConfigError(
                f"planner label {label!r}: {part!r} is not one of {', '.join(keys)} as KEY=VALUE"
            )
        raw[key.strip()] = value.strip()
    options: dict[str, Any] = {}
    spec = _spec_or_none(name)
    for key, value in raw.items():
        if key in _SPECIAL:
            continue
        keyword = _ALIASES.get(key, key)
        options[keyword] = _convert(spec, label, key, keyword, value)
    if "baseline" in raw:
        from .turns import baseline_turns

        options["turn_baseline"] = baseline_turns(raw["baseline"], name, raw.get("baseline_budget"))
    if "pool" in raw:
        options["pool"] = _pool(label, raw["pool"], raw.get("pool_prices", ""))
    return name, options


def planner_options(
    label: str, defaults: Mapping[str, Any] | None = None, given: AgentOptions | None = None
) -> tuple[str, AgentOptions]:
    """A label's planner and its options object: the label's options over ``given``, over ``defaults`` (an
    environment's: set where the planner's options have the field)."""
    name, fields = parse_planner(label)
    spec = get_planner(name)
    return name, make_options(spec, given, fields, defaults=defaults, what="option in the label")


def _convert(spec: PlannerSpec | None, label: str, key: str, keyword: str, value: str) -> Any:
    if keyword == "sale_weights":
        return _weights(label, value)
    if keyword == "turn_cap":
        return int(value) if value.isdigit() else value
    field = LEGACY_KEYWORDS.get(keyword, keyword)
    kinds = [spec.options] if spec is not None else []
    kinds += [SamplingOptions, SaleOptions, BATSOptions, PlanAndBudgetOptions, MCTSOptions, AgentOptions]
    kind = next((k for k in kinds if field in option_names(k)), AgentOptions)
    plain = field_kind(kind, field) if field in option_names(kind) else str
    if plain is bool:
        word = value.lower()
        if word not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ConfigError(
                f"planner label {label!r}: {key} must be true or false, got {value!r} (options are separated "
                "by ';', as in tracker[pace=true;budget_stop=true])"
            )
        return word in ("1", "true", "yes", "on")
    if plain is int:
        if not value.isdigit():
            raise ConfigError(f"planner label {label!r}: {key} must be a whole number, got {value!r}")
        return int(value)
    if plain is float:
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"planner label {label!r}: {key} must be a number, got {value!r}") from None
    return value


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


def _weights(label: str, value: str) -> Any:
    from ..planners.sale import SaleWeights

    try:
        data = loads(read_text(Path(value), "SALE weights file"))
        return SaleWeights(float(data["cost"]), float(data["entropy"]), dict(data.get("jury", {})))
    except (ConfigError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"planner label {label!r}: cannot read SALE weights from {value}: {exc}") from None


def build_planner_graph(ctx: PlannerContext) -> StateGraph[Any, Any]:
    """The graph of the planner ``ctx.name``; a planner that does not run from ``Agent`` says where it does."""
    spec = get_planner(ctx.name)
    if spec.build is None:
        raise ConfigError(f"planner {ctx.name!r} does not run from Agent: {spec.where}")
    return spec.build(ctx)
