"""The evaluation runner: planners x budgets x tasks, run concurrently, logged durably, resumable."""

from __future__ import annotations

import asyncio
import gc
import random
import re
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..budget.shared import SharedAccount
from ..budget.store import Account
from ..errors import ConfigError
from ..models.base import ChatModel
from ..models.registry import infer_model
from .base import Env, Task
from .episode import episode_record, jsonable
from .provenance import check_header, sweep_config, versions
from .results import ResultsFile, config_digest, episode_key, strip_text
from .spec import EvalSpec

__all__ = ["EvalSpec", "EvalSummary", "episode_record", "parse_budgets", "run_eval", "select_tasks"]

EnvFactory = Callable[[], Env]
ModelFactory = Callable[[], ChatModel]


@dataclass(frozen=True, slots=True)
class EvalSummary:
    path: Path
    total: int
    skipped: int
    ran: int
    errors: int
    seconds: float


Cell = tuple[Task, str, str, int]
"""One episode to run: task, planner, budget label, epoch."""

_SIMPLE_BUDGET = re.compile(r"^(none|x?\d+(\.\d+)?)$", re.IGNORECASE)


def parse_budgets(values: Sequence[str]) -> tuple[str, ...]:
    """``["2,5"]`` -> ``("2", "5")`` (also ``x1.5``: relative budgets); full budget strings are separated by ``;`` (``"search=2,open=1;search=5"``)."""
    out: list[str] = []
    for value in values:
        parts = [p.strip() for p in value.split(",")]
        if all(_SIMPLE_BUDGET.match(p) for p in parts):
            out.extend(parts)
        else:
            out.extend(p.strip() for p in value.split(";") if p.strip())
    if not out:
        raise ConfigError("no budget given; e.g. --budget 2,5 or --budget 'search=3,open=2'")
    return tuple(dict.fromkeys(out))


def select_tasks(
    tasks: Sequence[Task],
    limit: int | None,
    seed: int | None,
    shard: tuple[int, int] | None = None,
    only: Sequence[str] | None = None,
) -> list[Task]:
    """The first ``limit`` tasks, or a seeded random sample of them when ``seed`` is set; with ``only``, just
    those ids of that selection; with ``shard`` ``(i, n)``, the i-th of n interleaved slices of the rest."""
    ids = [t.id for t in tasks]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ConfigError(f"task id {dup!r} appears twice; task ids must be unique")
    chosen = list(tasks)
    if seed is not None:
        chosen = random.Random(seed).sample(chosen, len(chosen))
    chosen = chosen[:limit] if limit is not None else chosen
    if only is not None:
        wanted = set(only)
        missing = sorted(wanted - {t.id for t in chosen})
        if missing:
            raise ConfigError(
                f"--only names {len(missing)} task(s) not in the selection ({', '.join(missing[:5])}): check the "
                "ids, and give the --limit and --seed the ids were chosen from"
            )
        chosen = [t for t in chosen if t.id in wanted]
    if shard is None:
        return chosen
    index, count = shard
    if count < 1 or not 1 <= index <= count:
        raise ConfigError(
            f"shard {index}/{count} is not one of 1/{count} .. {count}/{count}; e.g. --shard 1/2"
        )
    return chosen[index - 1 :: count]


class _Tally:
    """Running figures for the progress bar."""

    def __init__(self) -> None:
        self.n = self.correct = 0
        self.cost = 0.0
        self.errors = 0

    def add(self, record: Mapping[str, Any]) -> None:
        self.n += 1
        self.correct += int(record["scores"].get("correct", 0) >= 1)
        self.cost += float((record.get("usage") or {}).get("usd", 0.0))
        self.errors += int(bool(record.get("error")))

    def text(self) -> str:
        if not self.n:
            return "acc -  cost -"
        return f"acc {self.correct / self.n:.2f}  mean cost ${self.cost / self.n:.4f}  errors {self.errors}"


async def run_eval(
    spec: EvalSpec,
    out: str | Path,
    *,
    env_factory: EnvFactory | None = None,
    model_factory: ModelFactory | None = None,
    executor: str = "asyncio",
    address: str | None = None,
    progress: bool = True,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    allow_changes: bool = False,
    shared: SharedAccount | None = None,
) -> EvalSummary:
    """Run every (task, planner, budget) cell not yet in ``out``; append each finished one at once. A file
    written with another configuration is refused unless ``allow_changes``. ``shared``: an account every
    episode also spends from (a sweep-wide cap, in Redis for a Ray fleet), whichever process runs it."""
    from .registry import make_env

    def default_env() -> Env:
        return make_env(spec.env, **dict(spec.env_options))

    env_factory = env_factory or default_env
    model_factory = model_factory or (lambda: infer_model(spec.model))
    env = env_factory()
    for planner in spec.planners:
        env.check_planner(planner)
    tasks = select_tasks(env.tasks(), spec.limit, spec.seed, spec.shard, spec.only)
    for budget in spec.budgets:
        if tasks:
            env.budget_for(tasks[0], budget)  # a malformed budget fails before anything runs
    results = ResultsFile(out)
    with results.exclusive():
        return await _sweep(
            spec,
            env,
            env_factory,
            model_factory,
            tasks,
            results,
            executor,
            address,
            progress,
            on_record,
            allow_changes,
            shared,
        )


async def _sweep(
    spec: EvalSpec,
    env: Env,
    env_factory: EnvFactory,
    model_factory: ModelFactory,
    tasks: Sequence[Task],
    results: ResultsFile,
    executor: str,
    address: str | None,
    progress: bool,
    on_record: Callable[[dict[str, Any]], None] | None,
    allow_changes: bool,
    shared: SharedAccount | None = None,
) -> EvalSummary:
    old_header, done = results.read()
    header = {
        "spec": jsonable(asdict(spec)),
        "env_info": env.describe(),
        "config": sweep_config(spec, env, tasks),
        "versions": versions(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if shared is not None:
        header["account"] = shared.describe()
    header["config_digest"] = config_digest(header["config"])
    check_header(results.path, old_header, header, allow_changes)
    was = (old_header or {}).get("versions", {}).get("source")
    if was and was != header["versions"].get("source"):
        warnings.warn(
            f"{results.path} was started from budgetgraph source {was} and this run is from "
            f"{header['versions'].get('source')}: its episodes will come from two code versions (each episode "
            "records its source); use a new --out for a clean comparison",
            stacklevel=2,
        )
    done_keys = {episode_key(r) for r in done}
    if spec.epochs < 1:
        raise ConfigError(f"epochs must be 1 or more, not {spec.epochs}")
    cells = [
        (task, planner, budget, epoch)
        for epoch in range(spec.epochs)  # epoch-major: a partial run has whole epochs first
        for task in tasks  # task-major, so a partial run still compares every cell on the same tasks
        for budget in spec.budgets
        for planner in spec.planners
        if (task.id, planner, budget, spec.model, epoch) not in done_keys
    ]
    total = len(tasks) * len(spec.planners) * len(spec.budgets) * spec.epochs
    tally = _Tally()
    for r in done:
        if (r["planner"], r["budget"]) in {(p, b) for p in spec.planners for b in spec.budgets}:
            tally.add(r)
    results.open(header)
    bar = _progress(progress, total, total - len(cells), tally)
    advance = bar.advance
    start = time.monotonic()
    ran = errors = 0

    def write(record: dict[str, Any]) -> None:
        nonlocal ran, errors
        if not spec.keep_text:
            record = strip_text(record)
        for key in ("source", "machine"):
            if key in header["versions"]:
                record[key] = header["versions"][key]
        record["config_digest"] = header["config_digest"]
        results.append(record)
        advance()
        tally.add(record)
        ran += 1
        errors += int(bool(record.get("error")))
        if on_record:
            on_record(record)

    try:
        with bar:
            if executor == "ray":
                from .ray_executor import run_on_ray

                await run_on_ray(
                    env_factory, model_factory, spec, cells, address, write, shared=shared, env=env
                )
            elif executor == "asyncio":
                model = model_factory()
                account = shared.open() if shared is not None else None
                with sweep_collector():
                    await _run_local(env, model, spec, cells, write, account)
            else:
                raise ConfigError(f"unknown executor {executor!r}; use asyncio or ray")
    finally:
        results.close()
    return EvalSummary(results.path, total, total - len(cells), ran, errors, time.monotonic() - start)


@contextmanager
def sweep_collector(young: int = 50_000) -> Iterator[None]:
    """Tune CPython's cyclic collector for a sweep of many live episodes, and restore it after: what is alive
    at the start (the model, the environment, the corpus) is frozen out of collections (``gc.freeze``), and the
    youngest generation is collected every ``young`` allocations instead of 700. Cycles are still collected."""
    old = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(max(old[0], young), old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


async def _run_local(
    env: Env,
    model: ChatModel,
    spec: EvalSpec,
    cells: Sequence[Cell],
    done: Callable[[dict[str, Any]], object],
    account: Account | None = None,
) -> None:
    gate = asyncio.Semaphore(max(1, spec.concurrency))
    seed = spec.epoch_seed

    async def one(task: Task, planner: str, budget: str, epoch: int) -> dict[str, Any]:
        async with gate:
            return await episode_record(
                env, task, model, spec.model, planner, budget, epoch, seed(epoch), spec.temperature, account
            )

    # tasks start in cell order (the semaphore is FIFO), so a partial run covers the first tasks fully
    pending = [asyncio.ensure_future(one(*c)) for c in cells]
    try:
        for next_done in asyncio.as_completed(pending):
            done(await next_done)
    finally:
        for t in pending:
            t.cancel()


class _progress:
    """A rich progress bar (episodes, ETA, running accuracy and cost), or nothing when turned off."""

    def __init__(self, show: bool, total: int, completed: int, tally: _Tally) -> None:
        self.show, self.total, self.completed, self.tally = show, total, completed, tally
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Callable[[], None]:
        if self.show:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("[bold]episodes"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.description}"),
                console=Console(stderr=True),
            )
            self._bar.start()
            self._task = self._bar.add_task(self.tally.text(), total=self.total, completed=self.completed)
        return self.advance

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=1, description=self.tally.text())

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
