"""Cost-augmented Monte Carlo tree search (papers.md section 2): plans whose actions have known costs.

Nodes are states; an action is a tool call with a cost. Selection is value plus an exploration bonus, with
values conditioned on the remaining budget (the reward of a plan is ``1 - cost / budget``). A child whose spent
cost plus an admissible lower bound on the rest exceeds the budget is pruned as infeasible, so a budget below
the optimal cost is reported as infeasible at the root, without search. ``prior`` (e.g. model scores of the
candidate actions) biases selection (PUCT), mixed with uniform (``prior_mix``, as AlphaZero mixes noise into
its root prior) so an action a weak model scores 0 is still explored; without a prior: the model-free mode.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

__all__ = ["DEFAULT_PRIOR_MIX", "CostedWorld", "MCTSResult", "PlanningProblem", "mcts_search"]

S = TypeVar("S", bound=Hashable)

DEFAULT_PRIOR_MIX = 0.5
"""Uniform share of the search prior: measured best of 0 / 0.25 / 0.5 on costplan (docs/planners.md)."""


class PlanningProblem(Protocol[S]):
    """What the search needs from an environment."""

    def actions(self, state: S) -> Sequence[tuple[str, float]]:
        """(action, cost) pairs available in ``state``."""
        ...

    def step(self, state: S, action: str) -> S: ...

    def is_goal(self, state: S) -> bool: ...

    def lower_bound(self, state: S) -> float:
        """A cost no plan from ``state`` to the goal can beat (0 is always valid, but prunes nothing)."""
        ...


class CostedWorld(Protocol):
    """A costed problem an agent acts in (the ``mcts`` planner's episode): search from where it stands, call the
    plan's tools, re-plan when the world changes under it."""

    @property
    def state(self) -> Hashable:
        """Where the agent stands now (the search's root)."""
        ...

    @property
    def done(self) -> bool:
        """The goal is reached."""
        ...

    @property
    def changes(self) -> int:
        """How many times the world changed under the agent (an event fired): a plan made before is stale."""
        ...

    def problem(self) -> PlanningProblem[Hashable]:
        """The search problem from the world as it is now."""
        ...

    def arguments(self, action: str) -> dict[str, object]:
        """The arguments of the tool call that takes ``action`` now."""
        ...

    def prior_prompt(self, remaining: float) -> str:
        """What the model is asked for its prior: a JSON object of 0-10 scores, one per available action."""
        ...

    def answer(self) -> str:
        """The answer once the goal is reached."""
        ...


Prior = Callable[[object, Sequence[tuple[str, float]]], dict[str, float]]


@dataclass
class _Node(Generic[S]):
    state: S
    spent: float
    parent: _Node[S] | None = None
    action: str | None = None
    prior: float = 1.0
    children: dict[str, _Node[S]] = field(default_factory=dict)
    visits: int = 0
    value: float = 0.0
    expanded: bool = False
    dead: bool = False  # no feasible goal below this node


@dataclass(frozen=True, slots=True)
class MCTSResult:
    """The best feasible plan found (``plan`` empty and ``feasible`` False when there is none)."""

    feasible: bool
    plan: tuple[str, ...]
    cost: float
    iterations: int
    nodes: int
    seconds: float
    reason: str = ""


class _Search(Generic[S]):
    def __init__(
        self,
        problem: PlanningProblem[S],
        budget: float,
        exploration: float,
        prior: Prior | None,
        seed: int,
        max_depth: int,
        prior_mix: float = 0.0,
    ) -> None:
        self.problem, self.budget, self.exploration, self.prior = problem, budget, exploration, prior
        self.prior_mix = prior_mix
        self.rng = random.Random(seed)
        self.max_depth = max_depth
        self.nodes = 1
        self.best_plan: tuple[str, ...] = ()
        self.best_cost = math.inf

    def feasible(self, state: S, spent: float) -> list[tuple[str, float]]:
        """Actions whose cost plus the lower bound after them still fits the budget."""
        p = self.problem
        return [
            (a, c)
            for a, c in p.actions(state)
            if spent + c + p.lower_bound(p.step(state, a)) <= self.budget + 1e-9
        ]

    def expand(self, node: _Node[S]) -> None:
        node.expanded = True
        options = self.feasible(node.state, node.spent)
        weights = self.prior(node.state, options) if (self.prior and options) else {}
        total = sum(max(weights.get(a, 0.0), 0.0) for a, _ in options)
        for a, c in options:
            share = max(weights.get(a, 0.0), 0.0) / total if total else 1.0 / len(options)
            share = (1 - self.prior_mix) * share + self.prior_mix / len(options)
            node.children[a] = _Node(self.problem.step(node.state, a), node.spent + c, node, a, share)
            self.nodes += 1
        if not node.children:
            node.dead = True

    def select(self, node: _Node[S]) -> _Node[S]:
        live = [ch for ch in node.children.values() if not ch.dead]
        log_n = math.log(node.visits + 1)

        def score(ch: _Node[S]) -> float:
            q = ch.value / ch.visits if ch.visits else 0.5
            weight = ch.prior * len(node.children) if self.prior else 1.0
            return (
                q
                + self.exploration * weight * math.sqrt(log_n + 1) / (1 + ch.visits)
                + self.rng.random() * 1e-6
            )

        return max(live, key=score)

    def rollout(self, node: _Node[S]) -> tuple[float, list[str], float]:
        """A random feasible completion: reward 1 - cost/budget at a goal, 0 when it gets stuck."""
        state, spent = node.state, node.spent
        path: list[str] = []
        for _ in range(self.max_depth):
            if self.problem.is_goal(state):
                return (1.0 - spent / self.budget if self.budget > 0 else 1.0), path, spent
            options = self.feasible(state, spent)
            if not options:
                break
            a, c = self.rng.choice(options)
            state, spent = self.problem.step(state, a), spent + c
            path.append(a)
        return 0.0, path, spent

    def descend(self, root: _Node[S]) -> _Node[S]:
        node, depth = root, 0
        while (
            node.expanded
            and node.children
            and not self.problem.is_goal(node.state)
            and depth < self.max_depth
        ):
            if all(ch.dead for ch in node.children.values()):
                node.dead = True
                break
            node = self.select(node)
            depth += 1
        return node

    def iterate(self, root: _Node[S]) -> None:
        node = self.descend(root)
        if not node.dead and not self.problem.is_goal(node.state) and not node.expanded:
            self.expand(node)
            if not node.dead:
                node = self.rng.choice(list(node.children.values()))
        if node.dead:
            _mark_dead(node)
            return
        reward, tail, cost = self.rollout(node)
        if reward > 0 or self.problem.is_goal(node.state):
            if cost < self.best_cost - 1e-9:
                self.best_plan, self.best_cost = _path(node) + tuple(tail), cost
        elif not tail:
            node.dead = True
            _mark_dead(node)
        walk: _Node[S] | None = node
        while walk is not None:
            walk.visits += 1
            walk.value += reward
            walk = walk.parent


def mcts_search(
    problem: PlanningProblem[S],
    start: S,
    budget: float,
    *,
    iterations: int = 400,
    exploration: float = 1.0,
    prior: Prior | None = None,
    prior_mix: float = DEFAULT_PRIOR_MIX,
    seed: int = 0,
    max_depth: int = 64,
) -> MCTSResult:
    """Search for the cheapest plan from ``start`` to a goal whose cost is at most ``budget``.

    ``prior_mix`` is the weight of the uniform prior mixed into ``prior`` (0: the prior alone).
    """
    if not 0.0 <= prior_mix <= 1.0:
        raise ValueError(f"prior_mix={prior_mix} must be between 0 and 1")
    began = time.perf_counter()
    if problem.is_goal(start):
        return MCTSResult(True, (), 0.0, 0, 1, 0.0)
    bound = problem.lower_bound(start)
    if bound > budget + 1e-9:
        reason = f"infeasible within budget: the cheapest plan costs at least {bound:g} > {budget:g}"
        return MCTSResult(False, (), math.inf, 0, 1, time.perf_counter() - began, reason)
    search = _Search(problem, budget, exploration, prior, seed, max_depth, prior_mix)
    root: _Node[S] = _Node(start, 0.0)
    runs = 0
    while runs < iterations and not root.dead:
        search.iterate(root)
        runs += 1
    seconds = time.perf_counter() - began
    if search.best_plan:
        return MCTSResult(True, search.best_plan, search.best_cost, runs, search.nodes, seconds)
    reason = "infeasible within budget: no plan within the budget was found"
    return MCTSResult(False, (), math.inf, runs, search.nodes, seconds, reason)


def _path(node: _Node[S]) -> tuple[str, ...]:
    out = []
    while node.parent is not None and node.action is not None:
        out.append(node.action)
        node = node.parent
    return tuple(reversed(out))


def _mark_dead(node: _Node[S]) -> None:
    parent = node.parent
    while parent is not None and parent.children and all(ch.dead for ch in parent.children.values()):
        parent.dead = True
        parent = parent.parent
