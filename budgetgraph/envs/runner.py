"""The evaluation runner: planners x budgets x tasks, run concurrently, logged durably, resumable."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import os
import platform
import random
import re
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from ..agents.planners import parse_planner
from ..agents.registry import PLANNERS
from ..errors import ConfigError
from ..models.base import ChatModel
from ..models.registry import infer_model
from .base import Env, Task
from .episode import episode_record, jsonable
from .results import ResultsFile, config_changes, config_digest, episode_key, strip_text
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


def source_revision() -> str | None:
    """The git commit budgetgraph runs from (``-dirty`` with uncommitted changes to tracked files), or None
    outside a git checkout; recorded so that a resumed file shows which episodes came from which code."""
    where = str(Path(__file__).resolve().parent)
    try:
        rev = subprocess.run(
            ["git", "-C", where, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", where, "diff", "--quiet", "HEAD", "--", "."], capture_output=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return rev.stdout.strip() + ("-dirty" if dirty.returncode == 1 else "")


def machine_tag() -> str:
    """The machine an episode ran on, as far as the embedded model's kernels tell machines apart (architecture,
    cores, the vector extensions llama.cpp dispatches on, GPU offload), so a results file that spans machines
    shows which episodes came from which."""
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    parts = [platform.machine() or "unknown", f"{os.cpu_count() or 0} cores"]
    parts += [f for f in ("avx2", "avx512f", "amx_int8") if f in flags]
    if gpu := os.environ.get("BUDGETGRAPH_GPU_LAYERS"):
        parts.append(f"gpu layers {gpu}")
    return " ".join(parts)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "machine": machine_tag()}
    if (rev := source_revision()) is not None:
        out["source"] = rev
    for dist in ("budgetgraph", "langgraph", "llama-cpp-python", "openai"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


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


def _digest(path: Path) -> str:
    """SHA-256 of a file, or of a folder's files in name order."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        digest.update(f.relative_to(path).as_posix().encode() if path.is_dir() else b"")
        with f.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def sweep_config(spec: EvalSpec, env: Env, tasks: Sequence[Task]) -> dict[str, Any]:
    """Everything that changes what an episode does, for the results header: the model, the environment's
    options (max tokens, the prices file, ...), the content of every file they name, and what each budget
    label expands to."""
    files = {
        key: _digest(Path(str(value)))
        for key, value in spec.env_options.items()
        if isinstance(value, str) and key in ("data", "corpus", "prices_file") and Path(value).exists()
    }
    budgets = {b: env.budget_for(tasks[0], b).to_dict() for b in spec.budgets} if tasks else {}
    return {
        "model": spec.model,
        "options": jsonable(dict(spec.env_options)),
        "files": files,
        "budgets": budgets,
        "prompts": prompt_digests(),
        "sampling": {"temperature": spec.temperature},
    }


SHARED_PROMPT_MODULES = (
    "budgetgraph.agents.prompts",
    "budgetgraph.budget.block",
    "budgetgraph.agents.turns",
    "budgetgraph.envs.coding",
)
"""Prompt modules every episode can read (the loop's and the environments'); each planner's own are in its
registry entry."""
_BLOCK_MODULES = {"per_tool": "budgetgraph.budget.tool_block"}
"""The module of a budget block a planner label may choose (``tracker[block=per_tool]``)."""


def prompt_modules() -> tuple[str, ...]:
    """Every module whose prompt texts a results header digests: the shared ones and every planner's."""
    every = [*SHARED_PROMPT_MODULES, *_BLOCK_MODULES.values()]
    for name in PLANNERS:
        every += PLANNERS[name].prompt_modules
    return tuple(dict.fromkeys(every))


def _short(module: str) -> str:
    return module.rsplit(".", 1)[-1]


def relevant_prompts(planners: Sequence[str]) -> set[str]:
    """The prompt modules (short names) whose texts the episodes of ``planners`` (labels) can depend on: a
    change in a module only some planners read does not make other planners' episodes stale."""
    specific = {_short(m) for n in PLANNERS for m in PLANNERS[n].prompt_modules} | {
        _short(m) for m in _BLOCK_MODULES.values()
    }
    out = {_short(m) for m in prompt_modules()} - specific
    for label in planners:
        name, options = parse_planner(label)
        spec = PLANNERS.get(name)
        out.update(_short(m) for m in (spec.prompt_modules if spec is not None else ()))
        if (block := options.get("budget_block")) in _BLOCK_MODULES:
            out.add(_short(_BLOCK_MODULES[block]))
    return out


def prompt_digests() -> dict[str, str]:
    """A short SHA-256 per module of its prompt texts (module-level constants in capitals: strings, and
    mappings or sequences of them), so a changed prompt changes the results header and a resume says so."""
    import importlib

    out = {}
    for name in prompt_modules():
        module = importlib.import_module(name)
        texts = {k: v for k, v in sorted(vars(module).items()) if k.lstrip("_").isupper() and _is_text(v)}
        blob = json.dumps(texts, sort_keys=True, default=str).encode()
        out[name.rsplit(".", 1)[-1]] = hashlib.sha256(blob).hexdigest()[:16]
    return out


def _is_text(value: Any) -> bool:
    if isinstance(value, str):
        return True
    if is_dataclass(value) and not isinstance(value, type):  # a policy of texts (the regime policy)
        return _is_text(asdict(value))
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (tuple, list)) else ()
    return any(isinstance(v, str) for v in items)


def _check_header(
    path: Path, old: Mapping[str, Any] | None, header: Mapping[str, Any], allow_changes: bool = False
) -> None:
    if old is None:
        return
    was, now = old.get("env_info", {}), header["env_info"]
    if was != now:
        raise ConfigError(
            f"{path} holds results of another environment or data ({was}, now {now}); "
            "use a different --out to start a new file"
        )
    planners = (header.get("spec") or {}).get("planners") or ()
    changes = config_changes(old.get("config") or {}, header.get("config") or {}, relevant_prompts(planners))
    if changes and not allow_changes:
        source = (old.get("versions") or {}).get("source")
        where = f", run it from a checkout of source {source} (the file's own)" if source else ""
        raise ConfigError(
            f"{path} was written with another configuration, so its episodes would not compare with new ones: "
            + "; ".join(changes)
            + f". Use a new --out{where}, or pass --extend to add to this file anyway"
        )


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
) -> EvalSummary:
    """Run every (task, planner, budget) cell not yet in ``out``; append each finished one at once. A file
    written with another configuration is refused unless ``allow_changes``."""
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
) -> EvalSummary:
    old_header, done = results.read()
    header = {
        "spec": jsonable(asdict(spec)),
        "env_info": env.describe(),
        "config": sweep_config(spec, env, tasks),
        "versions": _versions(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    header["config_digest"] = config_digest(header["config"])
    _check_header(results.path, old_header, header, allow_changes)
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

                await run_on_ray(env_factory, model_factory, spec, cells, address, write)
            elif executor == "asyncio":
                model = model_factory()
                with sweep_collector():
                    await _run_local(env, model, spec, cells, write)
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
) -> None:
    gate = asyncio.Semaphore(max(1, spec.concurrency))

    async def one(task: Task, planner: str, budget: str, epoch: int) -> dict[str, Any]:
        async with gate:
            return await episode_record(
                env, task, model, spec.model, planner, budget, epoch, spec.epoch_seed(epoch), spec.temperature
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
