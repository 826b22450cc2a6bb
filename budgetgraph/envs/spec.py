"""The sweep a results file holds: environment, model, planners x budgets, selection and sampling."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EvalSpec"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalSpec:
    """A sweep: what the results header records and what a resume must agree with."""

    env: str
    env_options: Mapping[str, Any] = field(default_factory=dict)
    model: str = "local"
    planners: tuple[str, ...] = ("react", "tracker")
    budgets: tuple[str, ...] = ("5",)
    limit: int | None = None
    seed: int | None = None
    concurrency: int = 4
    epochs: int = 1
    """Each (task, planner, budget) runs this many times, epoch e with model seed ``epoch_seed(e)``."""
    temperature: float | None = None
    """The sampling temperature of every model call (None: the agent's own, 0); epochs differ only above 0."""
    keep_text: bool = True
    """False: episodes are written without the task's text (``strip_text``), for data that may not be copied."""
    shard: tuple[int, int] | None = None
    """``(i, n)``: run only every n-th selected task from the i-th (1-based), so that one sweep can be split
    over processes or machines, each into its own file (``report`` reads them together)."""
    only: tuple[str, ...] | None = None
    """Task ids: run only these of the selection (e.g. the held-out tasks of a fit), in the selection's order."""

    def epoch_seed(self, epoch: int) -> int | None:
        """The model seed of an epoch: None (the backend's) for a single-epoch sweep at the default settings."""
        if self.epochs == 1 and self.temperature is None:
            return None
        return (self.seed or 0) * 1000 + epoch
