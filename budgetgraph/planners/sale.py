"""SALE's auction arithmetic (papers.md section 6): each agent's bid is a short strategy plan; its cost is
price x plan length, its value the plan's mean per-token entropy and the jury's 0-5 scores; the lowest
cost minus value wins. The weights are fitted on a training split by the min-max MILP (scipy's ``milp``).

Features are put on one scale per task before weighting: cost as a share of the task's dearest bid, jury
scores divided by 5, entropy in nats as reported. That choice is ours (the notes do not give the paper's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .._extras import require
from ..errors import ConfigError

__all__ = ["Bid", "SaleWeights", "TrainingTask", "fit_weights", "score_bids", "winner"]


@dataclass(frozen=True, slots=True)
class Bid:
    """One agent's bid on one task: its price ($ per million tokens), plan length (tokens), mean entropy of
    the plan, and the jury's scores of it by juror name (0-5)."""

    agent: str
    price: float
    tokens: int
    entropy: float | None
    jury: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SaleWeights:
    """``cost``: weight of the normalised bid cost; ``entropy``: of the plan's entropy; ``jury``: per juror
    (missing jurors weigh ``jury_default``). The defaults are uninformed until :func:`fit_weights` runs."""

    cost: float = 1.0
    entropy: float = -0.1
    jury: Mapping[str, float] = field(default_factory=dict)
    jury_default: float = 0.5

    def juror(self, name: str) -> float:
        return float(self.jury.get(name, self.jury_default))


def _features(bids: Sequence[Bid]) -> list[tuple[float, float, dict[str, float]]]:
    dearest = max((b.price * b.tokens for b in bids), default=0.0) or 1.0
    return [
        (b.price * b.tokens / dearest, float(b.entropy or 0.0), {k: v / 5.0 for k, v in b.jury.items()})
        for b in bids
    ]


def score_bids(bids: Sequence[Bid], weights: SaleWeights) -> list[float]:
    """C - V per bid (lower is better)."""
    out = []
    for cost, entropy, jury in _features(bids):
        value = weights.entropy * entropy + sum(weights.juror(j) * s for j, s in jury.items())
        out.append(weights.cost * cost - value)
    return out


def winner(bids: Sequence[Bid], weights: SaleWeights) -> int:
    """Index of the lowest C - V; ties go to the cheaper agent."""
    scores = score_bids(bids, weights)
    return min(range(len(bids)), key=lambda i: (scores[i], bids[i].price))


@dataclass(frozen=True, slots=True)
class TrainingTask:
    """A training task: every agent's bid and the loss of letting it execute (e.g. 1 - pass + a cost term)."""

    bids: Sequence[Bid]
    loss: Sequence[float]


def fit_weights(
    tasks: Sequence[TrainingTask],
    jurors: Sequence[str],
    *,
    bound: float = 10.0,
    big_m: float = 1e4,
    time_limit: float = 60.0,
) -> SaleWeights:
    """The min-max MILP: choose weights (cost weight fixed at 1, since C - V is scale-free) so that the agent
    each training task's auction picks has the least worst-case regret over the tasks.

    Variables: w_h, w_j in [-bound, bound]; x_{t,i} binary (task t goes to agent i, one per task); Q.
    minimise Q  s.t.  sum_i x_{t,i} (loss_{t,i} - min_i loss_{t,i}) <= Q;
    (C-V)_{t,i} - (C-V)_{t,k} <= M (1 - x_{t,i}) for all k: the chosen bid is an argmin under the weights.
    """
    if not tasks:
        raise ConfigError("fit_weights needs at least one training task")
    np = require("numpy", "sale")
    optimize = require("scipy.optimize", "sale")
    jurors = list(jurors)
    n_w = 1 + len(jurors)  # entropy weight, then one per juror
    index: list[tuple[int, int]] = [(t, i) for t, task in enumerate(tasks) for i in range(len(task.bids))]
    n_x = len(index)
    n = n_w + n_x + 1  # ... and Q last
    rows: list[list[float]] = []
    lo: list[float] = []
    hi: list[float] = []

    def feat(t: int, i: int) -> tuple[float, list[float]]:
        """(constant part, coefficients on the weights) of (C - V)_{t,i}."""
        cost, entropy, jury = _features(tasks[t].bids)[i]
        return cost, [-entropy, *(-jury.get(j, 0.0) for j in jurors)]

    for t, task in enumerate(tasks):
        if len(task.loss) != len(task.bids):
            raise ConfigError(f"training task {t}: {len(task.bids)} bids but {len(task.loss)} losses")
        best = min(task.loss)
        xs = [k for k, (tt, _) in enumerate(index) if tt == t]
        one = [0.0] * n
        for k in xs:
            one[n_w + k] = 1.0
        rows.append(one)
        lo.append(1.0)
        hi.append(1.0)
        regret = [0.0] * n
        for k in xs:
            regret[n_w + k] = task.loss[index[k][1]] - best
        regret[-1] = -1.0
        rows.append(regret)
        lo.append(-np.inf)
        hi.append(0.0)
        for k in xs:
            i = index[k][1]
            ci, wi = feat(t, i)
            for other in range(len(task.bids)):
                if other == i:
                    continue
                co, wo = feat(t, other)
                row = [0.0] * n
                for c in range(n_w):
                    row[c] = wi[c] - wo[c]
                row[n_w + k] = big_m
                rows.append(row)
                lo.append(-np.inf)
                hi.append(big_m - (ci - co))
    objective = np.zeros(n)
    objective[-1] = 1.0
    integrality = np.zeros(n)
    integrality[n_w : n_w + n_x] = 1
    lower = np.array([-bound] * n_w + [0.0] * n_x + [0.0])
    upper = np.array([bound] * n_w + [1.0] * n_x + [np.inf])
    result = optimize.milp(
        objective,
        constraints=optimize.LinearConstraint(np.array(rows), np.array(lo), np.array(hi)),
        integrality=integrality,
        bounds=optimize.Bounds(lower, upper),
        options={"time_limit": time_limit},
    )
    if result.x is None:
        raise ConfigError(f"the SALE weight MILP found no solution: {result.message}")
    fitted = [float(v) for v in result.x[:n_w]]
    return SaleWeights(cost=1.0, entropy=fitted[0], jury=dict(zip(jurors, fitted[1:], strict=True)))
