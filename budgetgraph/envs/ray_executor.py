"""Run episodes as Ray tasks (async actors that each hold the environment and the model) on a Ray cluster."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .._extras import require
from .base import Task
from .episode import episode_record, failed_record

if TYPE_CHECKING:
    from ..budget.shared import SharedAccount
    from .base import Env
    from .spec import EvalSpec

__all__ = ["run_on_ray"]


class _EpisodeWorker:
    """One per worker process: builds the environment and the model once, runs many episodes concurrently."""

    def __init__(
        self,
        env_factory: Callable[[], Env],
        model_factory: Callable[[], Any],
        model_label: str,
        shared: SharedAccount | None = None,
    ) -> None:
        self.env = env_factory()
        self.model = model_factory()
        self.label = model_label
        self.tasks = {t.id: t for t in self.env.tasks()}
        self.account = shared.open() if shared is not None else None  # this worker's own connection

    async def run(
        self, task_id: str, planner: str, budget: str, epoch: int, seed: int | None, temperature: float | None
    ) -> dict[str, Any]:
        task = self.tasks[task_id]
        return await episode_record(
            self.env, task, self.model, self.label, planner, budget, epoch, seed, temperature, self.account
        )


async def run_on_ray(
    env_factory: Callable[[], Env],
    model_factory: Callable[[], Any],
    spec: EvalSpec,
    cells: Sequence[tuple[Task, str, str, int]],
    address: str | None,
    done: Callable[[dict[str, Any]], object],
    workers: int | None = None,
    shared: SharedAccount | None = None,
    env: Env | None = None,
) -> None:
    """Spread ``cells`` over ``workers`` actors (default: the cluster's CPUs, at most ``spec.concurrency``);
    with ``shared``, every episode on every node also spends from that account."""
    ray = require("ray", "ray")
    import asyncio

    if not ray.is_initialized():
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            runtime_env={"env_vars": {"BUDGETGRAPH_CACHE": os.environ.get("BUDGETGRAPH_CACHE", "")}}
            if os.environ.get("BUDGETGRAPH_CACHE")
            else None,
        )
    if not cells:
        return
    cpus = int(ray.cluster_resources().get("CPU", 1))
    n = max(1, min(workers or cpus, spec.concurrency, len(cells)))
    per_actor = max(1, math.ceil(spec.concurrency / n))
    # a worker process that dies is restarted, and the episodes it held are run once more on it; an episode
    # that still cannot finish is recorded as an error (the sweep goes on, and what it spent stays spent)
    actor_cls = ray.remote(num_cpus=0, max_restarts=3, max_task_retries=1)(_EpisodeWorker).options(
        max_concurrency=per_actor
    )
    actors = [actor_cls.remote(env_factory, model_factory, spec.model, shared) for _ in range(n)]
    env = env or env_factory()  # the driver's, for the lines of episodes that could not finish

    async def one(i: int, cell: tuple[Task, str, str, int]) -> dict[str, Any]:
        task, planner, budget, epoch = cell
        ref = actors[i % n].run.remote(
            task.id, planner, budget, epoch, spec.epoch_seed(epoch), spec.temperature
        )
        try:
            return await asyncio.wrap_future(ref.future())  # type: ignore[no-any-return]
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
            seed = spec.epoch_seed(epoch)
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return failed_record(
                env, task, spec.model, planner, budget, epoch, seed, type(exc).__name__, first_line
            )

    try:
        for fut in asyncio.as_completed([one(i, c) for i, c in enumerate(cells)]):
            done(await fut)
    finally:
        for a in actors:
            ray.kill(a)
