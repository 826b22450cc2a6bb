"""What a results file records about where its episodes came from (source revision, machine, versions,
the sweep's configuration and prompt digests), and the resume check that compares a file's header with
the sweep about to extend it."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from ..agents.planners import parse_planner
from ..agents.registry import PLANNERS
from ..errors import ConfigError
from .base import Env, Task
from .episode import jsonable
from .results import config_changes
from .spec import EvalSpec

__all__ = [
    "SHARED_PROMPT_MODULES",
    "check_header",
    "machine_tag",
    "prompt_digests",
    "prompt_modules",
    "relevant_prompts",
    "source_revision",
    "sweep_config",
    "versions",
]


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


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "machine": machine_tag()}
    if (rev := source_revision()) is not None:
        out["source"] = rev
    for dist in ("budgetgraph", "langgraph", "llama-cpp-python", "openai"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


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
    "budgetgraph.agents.nudge",
    "budgetgraph.agents.need",
    "budgetgraph.agents.loop.features.budget_stop",
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


def check_header(
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
