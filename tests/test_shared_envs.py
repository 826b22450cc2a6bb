"""Every environment spends through the sweep-wide account: with ``llm_calls=1`` shared by the whole sweep, one
model call runs in all, whichever environment and planner (none builds a ledger of its own)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from conftest import MINI

from budgetgraph import SQLiteBudgetStore
from budgetgraph.budget import SharedAccount
from budgetgraph.envs import EvalSpec, run_eval
from budgetgraph.envs.registry import ENVS

ROOT = Path(__file__).resolve().parents[1]
BFCL = Path(__file__).parent / "data" / "bfcl_mini" / "simple_python.json"

CASES = {
    "hotpotqa": [({"data": str(MINI)}, ("react", "tracker", "bats"), ("2",))],
    "qa": [
        (
            {"data": str(ROOT / "examples" / "data" / "docs_qa.jsonl"), "corpus": str(ROOT / "docs")},
            ("react", "majority[samples=2]"),
            ("2",),
        )
    ],
    "bfcl": [({"data": str(BFCL)}, ("single_call",), ("2",))],
    "costplan": [({"tasks": 3, "seed": 1}, ("react", "mcts"), ("x1.5",))],
    "coding": [({"isolation": "none"}, ("react",), ("2",))],
}


def test_every_registered_environment_has_a_case_here():
    assert set(CASES) == set(ENVS)


@pytest.mark.parametrize("env", sorted(CASES))
def test_a_sweep_wide_llm_calls_cap_of_one_admits_one_model_call_in_all(env, tmp_path):
    options, planners, budgets = CASES[env][0]
    out, db = tmp_path / "sweep.jsonl", tmp_path / "account.db"
    spec = EvalSpec(
        env=env,
        env_options=options,
        model="scripted",
        planners=planners,
        budgets=budgets,
        limit=3,
        concurrency=2,
        seed=1,
    )
    summary = asyncio.run(
        run_eval(spec, out, progress=False, shared=SharedAccount(str(db), "sweep", "llm_calls=1"))
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    episodes = [r for r in rows if r.get("type") == "episode"]
    assert summary.ran == len(episodes) >= 2 * len(planners) and summary.errors == 0
    calls = sum((e.get("usage") or {}).get("llm_calls", 0) for e in episodes)
    spent = SQLiteBudgetStore(db).usage("sweep").spent
    assert calls == 1 and spent.get("llm_calls") == 1, (env, calls, dict(spent))
    assert rows[0]["account"]["budget"] == "llm_calls=1"
