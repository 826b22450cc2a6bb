"""Plan-and-budget allocation (papers.md section 4): split a budget across sub-questions by credit x schedule.

``allocate(total, credits, schedule)`` gives each sub-question ``floor(w_i * total)`` units with
``w_i = credit_i * sched(i, N)`` normalised, then hands the leftover units to the largest weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

from pydantic import BaseModel, Field

from ..errors import ConfigError

__all__ = ["SCHEDULES", "SubQuestion", "SubQuestions", "allocate", "fit_subquestions"]

Schedule = Literal["constant", "linear", "polynomial", "exponential", "cosine"]

SCHEDULES: dict[str, Callable[[int, int], float]] = {
    "constant": lambda i, n: 1.0,
    "linear": lambda i, n: float(n - i),
    "polynomial": lambda i, n: float((n - i) ** 2),
    "exponential": lambda i, n: 0.9**i,
    "cosine": lambda i, n: 0.5 * (1 + math.cos(math.pi * i / (n - 1))) + 0.1 if n > 1 else 1.0,
}


class SubQuestion(BaseModel):
    question: str
    credit: float = Field(default=1.0, ge=0, description="share of the effort, credits sum to 100")


class SubQuestions(BaseModel):
    """The planner's split of a question into 2-5 sub-questions with credits."""

    subquestions: list[SubQuestion] = Field(default_factory=list)


def allocate(total: int, credits: Sequence[float], schedule: str = "constant") -> list[int]:
    """Integer shares of ``total`` that sum to ``total`` exactly (early, uncertain steps get more)."""
    if schedule not in SCHEDULES:
        raise ConfigError(f"unknown schedule {schedule!r}; use one of {', '.join(SCHEDULES)}")
    if total < 0:
        raise ConfigError(f"cannot allocate a negative budget ({total})")
    n = len(credits)
    if n == 0:
        return []
    sched = SCHEDULES[schedule]
    weights = [max(c, 0.0) * sched(i, n) for i, c in enumerate(credits)]
    if sum(weights) <= 0:
        weights = [1.0] * n
    norm = [w / sum(weights) for w in weights]
    shares = [math.floor(w * total) for w in norm]
    for i in sorted(range(n), key=lambda i: -norm[i])[: total - sum(shares)]:
        shares[i] += 1
    return shares


def fit_subquestions(subs: Sequence[SubQuestion], slots: int | None) -> list[SubQuestion]:
    """Merge repeated sub-questions (a small model often writes the question several times; their credits add
    up) and keep the first ``slots`` of them, so that each one can afford at least one call of every capped
    tool (``None``: no tool cap, keep all). Order is kept: later sub-questions may refer to earlier answers."""
    merged: dict[str, SubQuestion] = {}
    for s in subs:
        key = " ".join(s.question.lower().split()).rstrip("?. ")
        if not key:
            continue
        if key in merged:
            merged[key] = SubQuestion(question=merged[key].question, credit=merged[key].credit + s.credit)
        else:
            merged[key] = s
    kept = list(merged.values())
    return kept if slots is None else kept[: max(1, slots)]
