"""Evaluation environments (HotpotQA, your own QA data, BFCL) and the runner that sweeps planners x budgets."""

from .base import CorpusQAEnv, Env, Task, parse_budget_value
from .registry import ENVS, make_env
from .results import ResultsFile, episode_key
from .runner import EvalSpec, EvalSummary, episode_record, parse_budgets, run_eval, select_tasks

__all__ = [
    "ENVS",
    "CorpusQAEnv",
    "Env",
    "EvalSpec",
    "EvalSummary",
    "ResultsFile",
    "Task",
    "episode_key",
    "episode_record",
    "make_env",
    "parse_budget_value",
    "parse_budgets",
    "run_eval",
    "select_tasks",
]
