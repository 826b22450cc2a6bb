"""A fleet: an evaluation on a two-node Ray cluster (on this machine, every node and Redis on 127.0.0.1) whose
episodes all draw on one sweep-wide dollar cap in Redis."""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal

import pytest
from conftest import MINI

from budgetgraph import RedisBudgetStore
from budgetgraph.budget import SharedAccount
from budgetgraph.envs import EvalSpec, run_eval

ray = pytest.importorskip("ray", reason="the ray extra is not installed")


def _spec(**kw) -> EvalSpec:
    base = dict(
        env="hotpotqa",
        env_options={"data": str(MINI)},
        model="scripted",
        planners=("react", "tracker"),
        budgets=("1", "3"),
        limit=4,
        concurrency=4,
        seed=7,
    )
    return EvalSpec(**{**base, **kw})


def _episodes(path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in rows if r.get("type") == "episode"]


def _usd(rows) -> Decimal:
    return sum((Decimal(str(r["usage"]["usd"])) for r in rows), Decimal(0))


@pytest.fixture(scope="module")
def cluster():
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    patch = pytest.MonkeyPatch()
    # Ray rewrites 127.0.0.1 to the machine's address; the nodes listen on loopback only, so keep it
    patch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
    if ray.is_initialized():
        ray.shutdown()
    nodes = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False},
    )
    nodes.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    nodes.wait_for_nodes()
    yield nodes
    ray.shutdown()
    nodes.shutdown()
    patch.undo()


def test_a_two_node_sweep_on_one_redis_dollar_cap_matches_the_local_run(cluster, redis_url, tmp_path):
    key = f"sweep-{uuid.uuid4().hex}"
    local_key = f"{key}-local"
    fleet = tmp_path / "fleet.jsonl"
    local = tmp_path / "local.jsonl"
    cap = "usd=0.05"  # 16 episodes of the scripted agent spend 0.032 in all: it fits, just
    summary = asyncio.run(
        run_eval(
            _spec(),
            fleet,
            executor="ray",
            address=cluster.address,
            progress=False,
            shared=SharedAccount(redis_url, key, cap, prefix="fleet"),
        )
    )
    assert (summary.ran, summary.errors) == (16, 0)
    assert len({n["NodeID"] for n in ray.nodes() if n["Alive"]}) == 2
    asyncio.run(
        run_eval(
            _spec(), local, progress=False, shared=SharedAccount(redis_url, local_key, cap, prefix="fleet")
        )
    )
    pick = lambda p: sorted(  # noqa: E731
        (r["task_id"], r["planner"], r["budget"], r["answer"], json.dumps(r["scores"], sort_keys=True))
        for r in _episodes(p)
    )
    assert pick(fleet) == pick(local) and len(pick(fleet)) == 16
    store = RedisBudgetStore(redis_url, prefix="fleet")
    for path, account in ((fleet, key), (local, local_key)):
        spent = store.usage(account, limits={"usd": 1}).spent
        assert spent["usd"] == _usd(_episodes(path)) == Decimal("0.032") <= Decimal("0.05")
    header = json.loads(fleet.read_text().splitlines()[0])
    assert header["account"] == {"store": redis_url, "key": key, "budget": cap, "window": "total"}


def test_a_binding_sweep_cap_is_never_overshot_across_the_nodes(cluster, redis_url, tmp_path):
    key = f"sweep-{uuid.uuid4().hex}"
    out = tmp_path / "tight.jsonl"
    summary = asyncio.run(
        run_eval(
            _spec(limit=6),
            out,
            executor="ray",
            address=cluster.address,
            progress=False,
            shared=SharedAccount(redis_url, key, "usd=0.015", prefix="fleet"),
        )
    )
    rows = _episodes(out)
    assert (summary.ran, summary.errors, len(rows)) == (24, 0, 24)
    spent = RedisBudgetStore(redis_url, prefix="fleet").usage(key, limits={"usd": 1})
    assert spent.spent["usd"] == _usd(rows) <= Decimal("0.015") and spent.reserved == {}
    refusal = (
        "The account's budget for usd (shared with other runs) is exhausted: needed 0.001, 0 left of 0.015."
    )
    refused = [
        r
        for r in rows
        if any(m["content"].startswith(refusal) for m in r["transcript"] if m["role"] == "tool")
    ]
    # a full episode of the scripted agent spends 0.002; one the account refused a call spent less
    assert refused and all(Decimal(str(r["usage"]["usd"])) < Decimal("0.002") for r in refused)
    assert len(refused) >= 24 - 7  # 0.015 pays for at most 7 full episodes of 0.002


def test_the_cli_takes_a_sweep_wide_budget_in_an_sqlite_store(tmp_path):
    import subprocess
    import sys

    from budgetgraph import SQLiteBudgetStore

    out, db = tmp_path / "cli.jsonl", tmp_path / "budgets.db"
    base = [
        sys.executable,
        "-m",
        "budgetgraph.cli",
        "eval",
        "hotpotqa",
        "--data",
        str(MINI),
        "--model",
        "scripted",
    ]
    run = subprocess.run(
        [*base, "--budget", "3", "--limit", "4", "--out", str(out), "--no-progress"]
        + ["--shared-budget", "usd=0.005", "--store", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    rows = _episodes(out)
    spent = SQLiteBudgetStore(db).usage("cli", limits={"usd": 1}).spent["usd"]  # the key: the file's name
    assert len(rows) == 8 and spent == _usd(rows) <= Decimal("0.005")
    bad = subprocess.run(
        [*base, "--out", str(tmp_path / "x.jsonl"), "--store", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "both --shared-budget" in bad.stderr
