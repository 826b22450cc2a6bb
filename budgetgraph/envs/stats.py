"""Statistics to tell signal from noise: a cell's standard error and bootstrap interval, and a paired
comparison of two planners on the tasks both finished (difference, bootstrap interval, sign-flip p-value)."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean

__all__ = [
    "FEW_TASKS",
    "Comparison",
    "accuracy_interval",
    "bootstrap_ci",
    "compare_paired",
    "standard_error",
    "wilson_interval",
]

RESAMPLES = 4000
ALPHA = 0.05  # a difference is beyond noise only when the interval excludes 0 and p < ALPHA
FEW_TASKS = 10
"""Below this many tasks an accuracy interval is too wide to tell planners apart; reports say so."""


def standard_error(values: Sequence[float]) -> float:
    """The standard error of the mean (0 for fewer than two values)."""
    n = len(values)
    if n < 2:
        return 0.0
    mean = fmean(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def bootstrap_ci(
    values: Sequence[float], level: float = 0.95, resamples: int = RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """A percentile bootstrap interval of the mean (seeded, so a report prints the same numbers twice)."""
    if not values:
        return (math.nan, math.nan)
    rng = random.Random(seed)
    n = len(values)
    means = sorted(fmean(rng.choices(values, k=n)) for _ in range(resamples))
    lo = means[int((1 - level) / 2 * resamples)]
    hi = means[min(resamples - 1, int((1 + level) / 2 * resamples))]
    return (lo, hi)


def wilson_interval(successes: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion: honest at small n, where 2 of 2 is not a certainty."""
    if n <= 0:
        return (math.nan, math.nan)
    z = {0.95: 1.959964, 0.9: 1.644854, 0.99: 2.575829}.get(level, 1.959964)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def accuracy_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Wilson for pass/fail per task; the bootstrap for graded scores (partial credit, epoch means)."""
    if values and all(v in (0.0, 1.0) for v in values):
        return wilson_interval(sum(values), len(values), level)
    return bootstrap_ci(values, level)


@dataclass(frozen=True, slots=True)
class Comparison:
    """B minus A on the tasks both finished: mean difference, its 95% interval, and a two-sided p-value.

    Beyond noise needs both the interval to exclude 0 and p < 0.05: with few tasks that differ, the percentile
    bootstrap excludes 0 (4 wins and 0 losses in 30 do) where the exact sign-flip test gives p = 0.125."""

    a: str
    b: str
    n: int
    difference: float
    low: float
    high: float
    p_value: float
    wins: int
    losses: int

    @property
    def within_noise(self) -> bool:
        return self.low <= 0.0 <= self.high or not self.p_value < ALPHA

    def verdict(self) -> str:
        if self.n == 0:
            return "no task finished by both"
        if self.low <= 0.0 <= self.high:
            return f"within noise: the interval [{self.low:+.3f}, {self.high:+.3f}] holds 0 (p = {self.p_value:.2f})"
        if self.within_noise:
            return (
                f"within noise: the interval [{self.low:+.3f}, {self.high:+.3f}] excludes 0 but the sign-flip "
                f"test does not (p = {self.p_value:.3f}): {self.wins} wins and {self.losses} losses are too few "
                "to tell"
            )
        better = self.b if self.difference > 0 else self.a
        return f"{better} is better: [{self.low:+.3f}, {self.high:+.3f}] excludes 0 (p = {self.p_value:.3f})"


def _sign_flip_p(diffs: Sequence[float], resamples: int, seed: int) -> float:
    """Two-sided p-value of the mean paired difference under random sign flips (exact up to 16 pairs)."""
    observed = abs(fmean(diffs))
    nonzero = [d for d in diffs if d != 0]
    if not nonzero:
        return 1.0
    n = len(diffs)
    if len(nonzero) <= 16:
        count = total = 0
        for signs in itertools.product((1, -1), repeat=len(nonzero)):
            total += 1
            count += abs(sum(s * d for s, d in zip(signs, nonzero, strict=True)) / n) >= observed - 1e-12
        return count / total
    rng = random.Random(seed)
    hits = sum(
        abs(sum(d if rng.random() < 0.5 else -d for d in nonzero) / n) >= observed - 1e-12
        for _ in range(resamples)
    )
    return (hits + 1) / (resamples + 1)


def compare_paired(
    a: Mapping[str, float], b: Mapping[str, float], names: tuple[str, str] = ("A", "B"), seed: int = 0
) -> Comparison:
    """Compare per-task scores of two cells on the tasks both have."""
    shared = sorted(set(a) & set(b))
    diffs = [b[t] - a[t] for t in shared]
    if not diffs:
        return Comparison(names[0], names[1], 0, math.nan, math.nan, math.nan, math.nan, 0, 0)
    low, high = bootstrap_ci(diffs, seed=seed)
    return Comparison(
        names[0],
        names[1],
        len(diffs),
        fmean(diffs),
        low,
        high,
        _sign_flip_p(diffs, RESAMPLES, seed),
        sum(d > 0 for d in diffs),
        sum(d < 0 for d in diffs),
    )
