"""Choosing tools or sub-agents under a budget: exact 0/1 knapsack and the online (ZCL) composer.

``select`` is the offline choice when values are known; :class:`OnlineComposer` is the streaming one from
"Automated Composition of Agents" (papers.md section 3): each candidate is probed to estimate its value and
accepted when value/cost clears a threshold that rises exponentially as the budget is spent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from ..errors import ConfigError

__all__ = ["Component", "OnlineComposer", "Selection", "select", "zcl_threshold"]

Number = int | float | Decimal | Fraction


@dataclass(frozen=True, slots=True)
class Component:
    """A candidate tool or sub-agent with its cost (in budget units or dollars) and its estimated value."""

    name: str
    cost: Number
    value: float = 0.0
    payload: Any = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Selection:
    chosen: tuple[Component, ...]
    cost: Number
    value: float


def _scale(costs: Sequence[Number], budget: Number) -> tuple[list[int], int]:
    """Costs as exact integers: decimals and fractions are multiplied by their common denominator."""
    fracs = [Fraction(str(c)) if isinstance(c, float | Decimal) else Fraction(c) for c in costs]
    cap = Fraction(str(budget)) if isinstance(budget, float | Decimal) else Fraction(budget)
    denom = math.lcm(*(f.denominator for f in [*fracs, cap]))
    return [int(f * denom) for f in fracs], int(cap * denom)


def select(components: Iterable[Component], budget: Number) -> list[Component]:
    """The subset with the largest total value whose total cost is at most ``budget`` (exact 0/1 knapsack).

    Dynamic programming over integer costs (exact decimals are scaled to integers); when that table would be
    too large, branch and bound on the value/cost ordering gives the same exact optimum.
    """
    items = list(components)
    for c in items:
        if c.cost < 0 or c.value < 0:
            raise ConfigError(
                f"component {c.name!r}: cost and value must be >= 0, got {c.cost} and {c.value}"
            )
    if budget < 0:
        raise ConfigError(f"budget must be >= 0, got {budget}")
    costs, cap = _scale([c.cost for c in items], budget)
    if cap * max(len(items), 1) <= 5_000_000:
        chosen = _dp(costs, [c.value for c in items], cap)
    else:
        chosen = _branch_and_bound(costs, [c.value for c in items], cap)
    return [items[i] for i in sorted(chosen)]


def _dp(costs: list[int], values: list[float], cap: int) -> list[int]:
    best = [0.0] * (cap + 1)
    take = [[False] * (cap + 1) for _ in costs]
    for i, (w, v) in enumerate(zip(costs, values, strict=True)):
        if v <= 0:
            continue
        for b in range(cap, w - 1, -1):
            if best[b - w] + v > best[b]:
                best[b] = best[b - w] + v
                take[i][b] = True
    chosen, b = [], cap
    for i in range(len(costs) - 1, -1, -1):
        if take[i][b]:
            chosen.append(i)
            b -= costs[i]
    return chosen


def _branch_and_bound(costs: list[int], values: list[float], cap: int) -> list[int]:
    order = sorted(
        (i for i in range(len(costs)) if values[i] > 0),
        key=lambda i: values[i] / costs[i] if costs[i] else math.inf,
        reverse=True,
    )
    best_value, best_set = 0.0, []

    def bound(k: int, room: int, value: float) -> float:
        for i in order[k:]:
            if costs[i] <= room:
                room -= costs[i]
                value += values[i]
            else:
                return value + values[i] * room / costs[i]
        return value

    def visit(k: int, room: int, value: float, chosen: list[int]) -> None:
        nonlocal best_value, best_set
        if value > best_value:
            best_value, best_set = value, list(chosen)
        if k == len(order) or bound(k, room, value) <= best_value:
            return
        i = order[k]
        if costs[i] <= room:
            chosen.append(i)
            visit(k + 1, room - costs[i], value + values[i], chosen)
            chosen.pop()
        visit(k + 1, room, value, chosen)

    visit(0, cap, 0.0, [])
    return best_set


def zcl_threshold(spent_fraction: float, lower: float, upper: float) -> float:
    """The ZCL online-knapsack threshold: (U e / L)^z (L / e); z is the fraction of the budget spent.

    At z = 0 it is L/e (accept almost anything useful); at z = 1 it is U (only the best value per cost).
    """
    z = min(max(spent_fraction, 0.0), 1.0)
    return float((upper * math.e / lower) ** z * (lower / math.e))


@dataclass
class OnlineComposer:
    """Accept candidates as they stream in, under ``budget``, by probed value per cost.

    ``probe(component) -> value`` estimates a candidate's value (for example: its success on a few probe
    tasks, weighted by the importance of the skills it covers); ``None`` means broken, never retried.
    ``value_bounds = (L, U)`` follow the paper: L = 1 / max cost, U = total importance / min cost.
    """

    budget: float
    value_bounds: tuple[float, float]
    spent: float = 0.0
    chosen: list[Component] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def for_candidates(cls, budget: float, costs: Sequence[float], total_importance: float) -> OnlineComposer:
        positive = [float(c) for c in costs if c > 0]
        if not positive:
            raise ConfigError("the online composer needs at least one candidate with a positive cost")
        return cls(budget, (1.0 / max(positive), total_importance / min(positive)))

    def offer(self, candidate: Component, probe: Callable[[Component], float | None]) -> bool:
        """Probe ``candidate`` and accept it when it fits and value/cost clears the current threshold."""
        cost = float(candidate.cost)
        entry: dict[str, Any] = {"name": candidate.name, "cost": cost}
        if cost > self.budget - self.spent:
            self.log.append({**entry, "accepted": False, "why": "does not fit the remaining budget"})
            return False
        value = probe(candidate)
        if value is None:
            self.log.append({**entry, "accepted": False, "why": "broken"})
            return False
        threshold = zcl_threshold(self.spent / self.budget if self.budget else 1.0, *self.value_bounds)
        ratio = value / cost if cost else math.inf
        accepted = value > 0 and ratio >= threshold
        self.log.append(
            {**entry, "value": value, "ratio": ratio, "threshold": threshold, "accepted": accepted}
        )
        if accepted:
            self.spent += cost
            self.chosen.append(Component(candidate.name, candidate.cost, value, candidate.payload))
        return accepted

    def run(self, candidates: Iterable[Component], probe: Callable[[Component], float | None]) -> Selection:
        for c in candidates:
            self.offer(c, probe)
        return Selection(tuple(self.chosen), self.spent, sum(c.value for c in self.chosen))
