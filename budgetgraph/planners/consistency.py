"""Adaptive-Consistency's stopping rules (papers.md section 8a): sample answers one at a time and stop once the
posterior says the majority is settled.

- Beta (two or fewer distinct answers): with counts a >= b of the top two, P(p > 1/2) under Beta(a+1, b+1).
  For whole counts it equals P(Binomial(a+b+1, 1/2) <= a), which is computed exactly.
- Dirichlet (three or more): P(the leader has the largest share) under Dirichlet(counts+1) of the top five
  answers, by seeded Monte Carlo (the reference implementation integrates numerically as well).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["StopRule", "Verdict", "beta_confidence", "dirichlet_confidence", "majority", "stop_verdict"]

StopRule = Literal["beta", "dirichlet", "adaptive", "never"]
THRESHOLD = 0.95


def beta_confidence(a: int, b: int) -> float:
    """P(the leader's true share exceeds 1/2) under Beta(a+1, b+1) from a uniform prior."""
    n = a + b + 1
    return float(sum(math.comb(n, j) for j in range(a + 1)) / 2**n)


def dirichlet_confidence(counts: Sequence[int], *, draws: int = 20_000, seed: int = 0) -> float:
    """P(the first count's answer has the largest share) under Dirichlet(counts + 1) of the top five counts."""
    top = sorted(counts, reverse=True)[:5]
    if len(top) < 2:
        return 1.0
    rng = random.Random(seed)
    wins = 0
    for _ in range(draws):
        shares = [rng.gammavariate(c + 1, 1.0) for c in top]
        if shares[0] >= max(shares[1:]):
            wins += 1
    return wins / draws


@dataclass(frozen=True, slots=True)
class Verdict:
    stop: bool
    confidence: float
    rule: str


def stop_verdict(
    answers: Sequence[Hashable], rule: StopRule = "adaptive", threshold: float = THRESHOLD
) -> Verdict:
    """Whether to stop sampling after ``answers`` (their grouping keys). ``adaptive``: Beta for <= 2 distinct
    answers, Dirichlet for more (the paper's default); ``never``: fixed-N majority voting."""
    counts = [c for _, c in Counter(answers).most_common()]
    if not counts:
        return Verdict(False, 0.0, "none")
    if rule == "never":
        return Verdict(False, 0.0, "never")
    use = rule if rule != "adaptive" else ("beta" if len(counts) <= 2 else "dirichlet")
    if use == "beta":
        confidence = beta_confidence(counts[0], counts[1] if len(counts) > 1 else 0)
    else:
        confidence = dirichlet_confidence(counts, seed=len(answers))
    return Verdict(confidence >= threshold, confidence, use)


def majority(answers: Sequence[Hashable]) -> int:
    """Index of the first answer of the most frequent group (ties go to the group seen first)."""
    counts = Counter(answers)
    best = max(counts.values())
    return next(i for i, a in enumerate(answers) if counts[a] == best)
