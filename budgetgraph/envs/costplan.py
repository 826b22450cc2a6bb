"""``costplan``: cost-aware travel planning with costed tools and blocking events (see costplan_world).

Planners: ``react`` and ``tracker`` drive the tools with the model; ``mcts`` plans with cost-augmented MCTS
(the model scores the tools once per plan as the prior) and re-plans after an event; ``mcts-uniform`` is the
same search with no model at all. Tool costs are charged to the ledger's ``usd``, so a budget is a cost cap:
``x1.5`` means 1.5 times the task's optimal cost, a number is an absolute cap. Every episode also has the
CostBench limit of 20 tool steps.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from ..agents.result import RunResult
from ..budget.block import GENERIC_POLICY
from ..budget.limits import Budget
from ..budget.prices import PriceTable
from ..errors import ConfigError
from ..models.base import ChatModel
from ..models.messages import ModelSettings
from ..planners.mcts import DEFAULT_PRIOR_MIX
from ..tools.base import Tool
from .base import Env, Task, build_agent
from .costplan_world import EVENTS, World, edit_distance, generate_tasks

__all__ = ["CostPlanEnv"]

STEP_LIMIT = 20
_SYSTEM = (
    "You are a planning agent. Each tool moves your data from one stage to a later one and returns the new data "
    "ID; tools cost what their descriptions say. Reach the final stage at the lowest total cost, one call at a "
    "time, passing the ID you hold. Call tools only as the tool-call format says. When you hold the final "
    "selection, reply with its ID only, inside <answer></answer>."
)


class _Problem:
    """The world's stage DAG as a planning problem for :func:`mcts_search`."""

    def __init__(self, world: World) -> None:
        self.goal = world.task.stages
        self.tools = {t.name: t for t in world.available()}
        share = [float("inf")] * self.goal
        for t in self.tools.values():
            for s in range(t.start, t.end):
                share[s] = min(share[s], t.cost / (t.end - t.start))
        self.suffix = [0.0] * (self.goal + 1)
        for s in range(self.goal - 1, -1, -1):
            self.suffix[s] = self.suffix[s + 1] + share[s]

    def actions(self, state: int) -> list[tuple[str, float]]:
        return [(t.name, t.cost) for t in self.tools.values() if t.start == state]

    def step(self, state: int, action: str) -> int:
        return self.tools[action].end

    def is_goal(self, state: int) -> bool:
        return state == self.goal

    def lower_bound(self, state: int) -> float:
        return self.suffix[state]


class _Costed:
    """The world as the ``mcts`` planner sees it (:class:`~budgetgraph.planners.mcts.CostedWorld`)."""

    def __init__(self, world: World) -> None:
        self.world = world

    @property
    def state(self) -> int:
        return self.world.stage

    @property
    def done(self) -> bool:
        return self.world.done

    @property
    def changes(self) -> int:
        return int(self.world.fired)

    def problem(self) -> _Problem:
        return _Problem(self.world)

    def arguments(self, action: str) -> dict[str, object]:
        return {"data": self.world.data_id()}

    def prior_prompt(self, remaining: float) -> str:
        world = self.world
        listing = "\n".join(
            f"- {t.name}: stages {t.start}->{t.end}, cost {t.cost:g}" for t in world.available()
        )
        return (
            f"You plan tool use for: {world.task.query}. The goal is stage {world.task.stages}; you are at stage "
            f"{world.stage}. Remaining budget: {remaining:g}. Tools:\n{listing}\nScore how promising each tool "
            'is for the cheapest complete plan, as JSON {"tool name": score 0-10, ...}. Reply with the JSON only.'
        )

    def answer(self) -> str:
        return self.world.answer_id()


def _question(world: World) -> str:
    t = world.task
    chain = " -> ".join(t.stage_types())
    return (
        f"Plan the {t.family.lower()} part of a trip for a traveller who wants {t.query}. You hold {world.data_id()}. "
        f"Tools move your data along the stages {chain}; a composite tool does several stages in one call. "
        "Each tool's cost is in its description. Reach the final selection at the lowest total cost, passing "
        "each tool the data ID you hold, then answer with the final selection's ID inside <answer></answer>. "
        "If the budget cannot pay for any complete plan, answer <answer>infeasible</answer>."
    )


class CostPlanEnv(Env):
    """Generated travel-planning tasks; scores: success, exact match with the optimal plan, cost ratio, NED."""

    name = "costplan"
    kind = "planning"

    def __init__(
        self,
        tasks: int = 50,
        seed: int = 0,
        *,
        level: int = 2,
        event: str | None = None,
        iterations: int = 300,
        prior_mix: float = DEFAULT_PRIOR_MIX,
        prices: PriceTable | None = None,
        max_tokens: int = 256,
        data: str | None = None,
    ) -> None:
        if data:
            raise ConfigError("costplan generates its tasks: use --tasks N --seed S instead of --data")
        if event in ("none", ""):
            event = None
        if event is not None and event not in (*EVENTS, "mixed"):
            raise ConfigError(f"unknown event {event!r}; use one of {', '.join(EVENTS)}, mixed or none")
        if level < 1:
            raise ConfigError("level (the number of refinement stages) must be at least 1")
        self.spec = {"tasks": tasks, "seed": seed, "level": level, "event": event}
        self._tasks = {t.id: t for t in generate_tasks(tasks, seed, level=level, event=event)}
        if not 0.0 <= prior_mix <= 1.0:
            raise ConfigError(f"prior_mix={prior_mix}: give the uniform share of the MCTS prior, 0 to 1")
        self.iterations = iterations
        self.prior_mix = prior_mix
        self._prices = prices or PriceTable()
        self._max_tokens = max_tokens

    def tasks(self) -> list[Task]:
        out = []
        for t in self._tasks.values():
            world = World(t)
            out.append(Task(t.id, _question(world), world.answer_id(), {"event": t.event or "static"}))
        return out

    def category(self, task: Task) -> str | None:
        return str(task.meta["event"])

    def budget_for(self, task: Task, value: str) -> Budget:
        text = value.strip().lower()
        if text.startswith("x"):
            try:
                factor = Decimal(text[1:])
            except ArithmeticError:
                raise ConfigError(
                    f"budget {value!r}: use xF (F times the optimal cost) or a budget string, e.g. usd=5"
                ) from None
            cap = (Decimal(str(World(self._tasks[task.id]).reference_cost)) * factor).quantize(
                Decimal("0.01")
            )
            return Budget(usd=cap, total_tool_calls=STEP_LIMIT)
        if text.replace(".", "", 1).isdigit():
            raise ConfigError(
                f"costplan budget {value!r}: write usd={value} for a dollar cap or x{value} for {value} times "
                "each task's optimal cost (a bare number means calls of each capped tool, and costplan caps none)"
            )
        parsed = Budget.parse(value)  # costplan caps no tool one by one: "usd=5", "tools=8", "none"
        total = parsed.total_tool_calls
        return replace(parsed, total_tool_calls=STEP_LIMIT if total is None else min(total, STEP_LIMIT))

    def describe(self) -> dict[str, Any]:
        return {"env": self.name, **self.spec, "prior_mix": self.prior_mix}

    # -- episodes ---------------------------------------------------------------------------------
    def _tools(self, world: World) -> list[Tool]:
        types = world.task.stage_types()
        out: list[Tool] = []

        def make(name: str) -> Tool:
            async def call(data: str) -> str:
                world.check(name, data)
                text = world.apply(name)
                for tool in out:  # a cost change applies from the next call on
                    if tool.name in world.tools:
                        tool.price = Decimal(str(world.tools[tool.name].cost))
                return text

            spec = world.tools[name]
            desc = f"{spec.description} Input: the {types[spec.start].replace('_', ' ')} ID you hold. Cost: {spec.cost:g}."
            return Tool(call, name=name, description=desc, price=Decimal(str(spec.cost)), timeout=None)

        out.extend(make(n) for n in world.tools)
        return out

    async def run_episode(self, task: Task, model: ChatModel, planner: str, budget: Budget) -> RunResult:
        world = World(self._tasks[task.id])
        agent = build_agent(
            model,
            self._tools(world),
            planner,
            # world, iterations and prior_mix are the mcts planner's; the others have no such fields
            options={
                "regime_policy": GENERIC_POLICY,
                "world": _Costed(world),
                "iterations": self.iterations,
                "prior_mix": self.prior_mix,
            },
            prices=self._prices,
            max_tokens=self._max_tokens,
            max_turns=STEP_LIMIT + 2,
            system_prompt=_SYSTEM,
            # each tool consumes the ID the previous one returned: a batch of calls cannot be right
            settings=ModelSettings(temperature=0.0, parallel_tool_calls=False),
        )
        return await agent.arun(task.question, budget=budget)

    # -- scoring ----------------------------------------------------------------------------------
    def score(self, task: Task, result: RunResult) -> dict[str, float]:
        world = World(self._tasks[task.id])
        for m in result.messages:  # replay the successful calls: the world is deterministic
            if m.role == "tool" and m.name and m.content.startswith(f"{m.name} done."):
                world.apply(m.name)
        cap = (result.ledger.get("limits") or {}).get("usd")
        feasible = cap is None or world.reference_cost <= float(Decimal(str(cap))) + 1e-9
        answer = (result.answer or "").strip()
        reached = world.done and world.answer_id() in answer
        said_infeasible = "infeasible" in answer.lower()
        correct = reached if feasible else said_infeasible
        scores: dict[str, float] = {"correct": float(correct), "success": float(correct)}
        longest = max(len(world.path), len(world.reference), 1)
        scores["em"] = float(world.path == world.reference) if feasible else float(correct)
        scores["ned"] = edit_distance(world.path, world.reference) / longest if reached else 1.0
        if reached and world.reference_cost > 0:
            scores["cost_ratio"] = world.spent / world.reference_cost
        if world.fired:
            scores["adapted"] = float(reached)
        return scores

    def zero_scores(self) -> dict[str, float]:
        return {"correct": 0.0, "success": 0.0, "em": 0.0, "ned": 1.0}
