"""The CostBench-style travel-planning world (papers.md section 5), written from its published design.

A task is a chain of stages (decide preference, search candidates, ``level`` refinements, select final).
Atomic tools do one stage; composite tools cover a contiguous run of stages at about the sum of their parts
plus seeded noise. A state is how many stages are done; the cheapest plan is a shortest path over that DAG.
Four blocking events can fire after a chosen step: a tool is banned, costs change, the preference changes,
or the set of composite tools changes; the reference plan is recomputed after each.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import ToolRejected

__all__ = ["EVENTS", "FAMILIES", "CostTask", "PlanTool", "World", "generate_tasks", "shortest_plan"]

FAMILIES = ("Location", "Transportation", "Accommodation", "Attraction", "Dining", "Shopping")
EVENTS = ("ban_tool", "cost_change", "preference_change", "steplen_change")
_QUERIES = {
    "Location": "a city to visit for {days} days in {month}, {taste}",
    "Transportation": "how to travel between two cities on {month} {day}, {taste}",
    "Accommodation": "a place to stay for {days} nights in {month}, {taste}",
    "Attraction": "attractions for a {days}-day trip in {month}, {taste}",
    "Dining": "restaurants for {days} evenings in {month}, {taste}",
    "Shopping": "shopping for souvenirs on a {days}-day trip in {month}, {taste}",
}
_TASTES = (
    "on a tight budget",
    "with small children",
    "who loves history",
    "who prefers quiet places",
    "travelling for business",
    "who likes food markets",
)
_MONTHS = ("March", "May", "July", "September", "October", "December")


@dataclass(frozen=True, slots=True)
class PlanTool:
    """A tool that takes the chain from stage ``start`` to stage ``end`` (``end - start`` stages)."""

    name: str
    start: int
    end: int
    cost: float
    description: str

    @property
    def atomic(self) -> bool:
        return self.end - self.start == 1


@dataclass(frozen=True, slots=True)
class CostTask:
    id: str
    family: str
    level: int
    query: str
    tools: tuple[PlanTool, ...]
    seed: int
    event: str | None = None
    trigger: int = 1

    @property
    def stages(self) -> int:
        return self.level + 3

    def stage_types(self) -> list[str]:
        f = self.family.lower()
        refined = [f"{f}_candidates_refined_{k}" for k in range(1, self.level + 1)]
        return ["query", f"{f}_preference", f"{f}_candidates", *refined, f"{f}_selection"]


def _stage_labels(family: str, level: int) -> list[tuple[str, str]]:
    return [
        ("Decide", "Preference"),
        ("Search", "Candidates"),
        *[("Refine", f"Step{k}") for k in range(1, level + 1)],
        ("Select", "Final"),
    ]


def _noise(name: str, seed: int, k: int) -> float:
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return random.Random(digest).gauss(0.0, 0.1 * k**0.5)


def _make_tools(
    family: str, level: int, seed: int, cost_seed: int, composites: tuple[int, int]
) -> list[PlanTool]:
    rng = random.Random(cost_seed)
    labels = _stage_labels(family, level)
    types = CostTask("", family, level, "", (), seed).stage_types()
    atomic_costs = [round(rng.uniform(15, 25), 2) for _ in labels]
    tools = []
    for i, (verb, what) in enumerate(labels):
        desc = f"{verb} the {types[i + 1].replace('_', ' ')} from the {types[i].replace('_', ' ')}."
        tools.append(PlanTool(f"{verb}_{family}_{what}", i, i + 1, atomic_costs[i], desc))
    lo, hi = composites
    n = len(labels)
    for k in range(max(2, lo), min(hi, n) + 1):
        for i in range(0, n - k + 1):
            j = i + k
            name = f"{family}_{labels[i][1]}_To_{labels[j - 1][1]}"
            base = sum(atomic_costs[i:j])
            cost = max(1.0, round(base * (1 + _noise(name, cost_seed, k)), 2))
            desc = f"Do {k} stages at once: from the {types[i].replace('_', ' ')} to the {types[j].replace('_', ' ')}."
            tools.append(PlanTool(name, i, j, cost, desc))
    return tools


def generate_tasks(
    n: int, seed: int = 0, *, level: int = 2, event: str | None = None, ban_longest: bool = True
) -> list[CostTask]:
    """``n`` reproducible tasks; ``event`` is one of :data:`EVENTS`, ``"mixed"`` or None (static)."""
    rng = random.Random(seed)
    tasks = []
    for t in range(n):
        family = FAMILIES[t % len(FAMILIES)]
        task_seed = rng.randrange(1 << 30)
        tools = _make_tools(family, level, task_seed, task_seed, (2, level + 3))
        if ban_longest:
            tools = [x for x in tools if not (x.start == 0 and x.end == level + 3)]
        query = _QUERIES[family].format(
            days=rng.randint(2, 9),
            month=rng.choice(_MONTHS),
            day=rng.randint(1, 28),
            taste=rng.choice(_TASTES),
        )
        kind = rng.choice(EVENTS) if event == "mixed" else event
        plan = shortest_plan(tools, 0, level + 3)[1]
        trigger = max(1, len(plan) // 2)
        tasks.append(
            CostTask(f"costplan-{seed}-{t}", family, level, query, tuple(tools), task_seed, kind, trigger)
        )
    return tasks


def shortest_plan(tools: Iterable[PlanTool], start: int, goal: int) -> tuple[float, list[str]]:
    """The exact cheapest chain from stage ``start`` to ``goal`` (a DAG: dynamic programming in stage order)."""
    best: dict[int, tuple[float, list[str]]] = {start: (0.0, [])}
    by_start: dict[int, list[PlanTool]] = {}
    for tool in tools:
        by_start.setdefault(tool.start, []).append(tool)
    for s in range(start, goal):
        if s not in best:
            continue
        cost, path = best[s]
        for tool in by_start.get(s, []):
            if tool.end > goal:
                continue
            cand = (round(cost + tool.cost, 6), [*path, tool.name])
            if tool.end not in best or cand[0] < best[tool.end][0] - 1e-9:
                best[tool.end] = cand
    if goal not in best:
        return float("inf"), []
    return best[goal]


@dataclass
class World:
    """One episode's live state: what is held, what each tool costs now, and what the events changed."""

    task: CostTask
    tools: dict[str, PlanTool] = field(default_factory=dict)
    stage: int = 0
    preference: int = 0
    banned: set[str] = field(default_factory=set)
    path: list[str] = field(default_factory=list)
    spent: float = 0.0
    calls: int = 0
    fired: bool = False
    reference: list[str] = field(default_factory=list)
    reference_cost: float = 0.0
    event_note: str = ""

    def __post_init__(self) -> None:
        self.tools = {t.name: t for t in self.task.tools}
        self.reference_cost, self.reference = shortest_plan(self.tools.values(), 0, self.task.stages)

    # -- what the agent sees ----------------------------------------------------------------------
    def data_id(self, stage: int | None = None) -> str:
        s = self.stage if stage is None else stage
        tag = hashlib.sha256(f"{self.task.seed}:{self.preference}:{s}".encode()).hexdigest()[:6]
        return f"{self.task.stage_types()[s]}#{tag}"

    def answer_id(self) -> str:
        return "cand-" + hashlib.sha256(f"{self.task.seed}:{self.preference}:final".encode()).hexdigest()[:8]

    def available(self) -> list[PlanTool]:
        return [t for t in self.tools.values() if t.name not in self.banned]

    @property
    def done(self) -> bool:
        return self.stage == self.task.stages

    # -- acting ---------------------------------------------------------------------------------
    def check(self, name: str, data: str) -> PlanTool:
        """The tool, if this call can run now; otherwise ToolRejected saying why (nothing is charged)."""
        tool = self.tools.get(name)
        if tool is None or name in self.banned:
            raise ToolRejected(f"{name} is not available (banned or withdrawn); choose another tool")
        if tool.start != self.stage:
            need = self.task.stage_types()[tool.start]
            raise ToolRejected(f"{name} needs a {need}, but you hold {self.data_id()}")
        held = self.data_id()
        if data.strip() not in (held, held.split("#", 1)[1]):  # the bare hash is accepted too
            raise ToolRejected(f"{name} was given {data!r}; pass the data you hold: {self.data_id()}")
        return tool

    def apply(self, name: str) -> str:
        """Run a checked tool: advance the stage, record the step, maybe fire the event."""
        tool = self.tools[name]
        self.stage = tool.end
        self.path.append(name)
        self.spent = round(self.spent + tool.cost, 6)
        self.calls += 1
        out = f"{name} done. You now hold {self.data_id()}."
        if self.done:
            out += f" Final selection: {self.answer_id()}. Answer with this ID."
        if self.task.event and not self.fired and self.calls >= self.task.trigger and not self.done:
            out += "\n" + self.fire()
        return out

    def fire(self) -> str:
        """Apply the task's event and recompute the reference plan from here."""
        self.fired = True
        kind = self.task.event
        prefix, prefix_cost = list(self.path), self.spent
        if kind == "ban_tool":
            nxt = shortest_plan(self.available(), self.stage, self.task.stages)[1]
            victim = nxt[0] if nxt else next(iter(self.tools))
            self.banned.add(victim)
            note = f"[EVENT] The tool {victim} has been disabled; it can no longer be used."
        elif kind == "cost_change":
            fresh = _make_tools(
                self.task.family,
                self.task.level,
                self.task.seed,
                self.task.seed + 7919,
                (2, self.task.stages),
            )
            self.tools = {t.name: t for t in fresh if t.name in self.tools}
            listing = ", ".join(f"{t.name}={t.cost:g}" for t in self.available())
            note = f"[EVENT] Tool costs changed. New costs: {listing}."
        elif kind == "preference_change":
            self.preference += 1
            self.stage = 0
            note = (
                "[EVENT] The traveller changed their preference. Everything found so far is stale: start again "
                f"from the query you hold: {self.data_id()}."
            )
        elif kind == "steplen_change":
            self.tools = {n: t for n, t in self.tools.items() if t.end - t.start <= 2}
            note = "[EVENT] Composite tools covering more than 2 stages were withdrawn."
        else:  # pragma: no cover - guarded by generate_tasks
            raise ValueError(kind)
        cost, rest = shortest_plan(self.available(), self.stage, self.task.stages)
        self.reference = prefix + rest
        self.reference_cost = round(prefix_cost + cost, 6)
        self.event_note = note
        return note


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]
