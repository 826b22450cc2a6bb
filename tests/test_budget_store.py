"""Budget stores: caps that span runs, processes and machines (SQLite on one machine, a real Redis for a
fleet), exact under concurrent processes, with leases that free a crashed process's reservations."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budgetgraph import (
    AccountExceeded,
    Agent,
    Budget,
    ConfigError,
    Ledger,
    RedisBudgetStore,
    ScriptedModel,
    SQLiteBudgetStore,
    tool,
)
from budgetgraph.budget.store import from_units, to_units, window_bucket
from budgetgraph.errors import BudgetStoreError

WORKER = Path(__file__).resolve().parent / "store_worker.py"
LEASE_S = 3.0  # the workers' lease (store_worker.LEASE_S)


@pytest.fixture(params=["sqlite", "redis"])
def kind(request):
    return request.param


@pytest.fixture
def target(kind, tmp_path, request):
    if kind == "sqlite":
        return str(tmp_path / "budgets.db")
    return request.getfixturevalue("redis_url")


def open_store(kind: str, target: str, prefix: str = "t"):
    return SQLiteBudgetStore(target) if kind == "sqlite" else RedisBudgetStore(target, prefix=prefix)


def fresh_key(name: str) -> str:
    return f"{name}:{uuid.uuid4().hex}"  # not random: hypothesis seeds it the same for every example


# -- windows and units -----------------------------------------------------------------------------------
def test_windows_are_fixed_utc_buckets():
    now = datetime(2026, 12, 31, 23, 59, 30, tzinfo=timezone.utc)
    assert window_bucket("minute", now) == ("2026-12-31T23:59", 30.0)
    assert window_bucket("hour", now)[0] == "2026-12-31T23"
    assert window_bucket("day", now) == ("2026-12-31", 30.0)
    label, left = window_bucket("month", now)
    assert (label, left) == ("2026-12", 30.0)  # December rolls into January
    assert window_bucket("total", now) == ("total", None)


def test_dollars_are_whole_nano_dollars_rounded_up():
    assert to_units("usd", Decimal("0.0000000011")) == 2
    assert to_units("usd", Decimal("1.5")) == 1_500_000_000
    assert from_units("usd", 2) == Decimal("0.000000002")
    assert to_units("total_tokens", 7) == 7


def test_account_input_errors_say_what_to_do(tmp_path):
    store = SQLiteBudgetStore(tmp_path / "b.db")
    with pytest.raises(ConfigError, match="no caps"):
        store.account("u", {})
    with pytest.raises(ConfigError, match="wall time"):
        store.account("u", "seconds=5")
    with pytest.raises(ConfigError, match="non-empty key"):
        store.account("", "usd=1")
    with pytest.raises(ConfigError, match="window"):
        store.account("u", "usd=1", window="week")  # type: ignore[arg-type]


def test_a_file_that_is_not_a_store_is_a_clear_error(tmp_path):
    bad = tmp_path / "not.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(BudgetStoreError, match="not.db"):
        SQLiteBudgetStore(bad)


def test_an_unreachable_redis_refuses_the_call_and_loses_nothing():
    pytest.importorskip("redis")
    store = RedisBudgetStore("redis://127.0.0.1:1/0")
    ledger = Ledger(Budget.parse("tokens=100"), account=store.account("u", "usd=1"))
    with pytest.raises(BudgetStoreError, match="Redis server up"):
        ledger.try_reserve({"total_tokens": 10, "usd": Decimal("0.01")})
    assert ledger.remaining("total_tokens") == 100  # the local reservation was undone


# -- one process -----------------------------------------------------------------------------------------
def test_reserve_commit_release_and_refusal(kind, target):
    account = open_store(kind, target).account(fresh_key("u"), "usd=0.01,tokens=100", window="day")
    grant = account.try_reserve({"usd": Decimal("0.004"), "total_tokens": 60, "llm_calls": 1})
    refused = account.try_reserve({"total_tokens": 60})
    assert isinstance(refused, AccountExceeded)
    assert refused.resource == "total_tokens" and refused.remaining == 40 and refused.limit == 100
    assert account.key in str(refused) and "day" in str(refused)
    assert account.commit(grant, {"usd": Decimal("0.0031"), "total_tokens": 50, "llm_calls": 1})
    usage = account.usage()
    assert usage.spent == {"usd": Decimal("0.0031"), "total_tokens": 50, "llm_calls": 1}
    assert usage.reserved == {} and usage.remaining("total_tokens") == 50
    held = account.try_reserve({"total_tokens": 50})
    assert account.available("total_tokens") == 0
    account.release(held)
    assert account.available("total_tokens") == 50


def test_an_expired_lease_becomes_spend_and_a_late_commit_replaces_it_with_the_truth(kind, target):
    """A reservation whose lease expires may belong to a call that ran (its commit failed, its process
    died): it lapses into spend, never back into room; a late commit then records what the call used."""
    account = open_store(kind, target).account(fresh_key("u"), "tokens=100", lease_s=0.3)
    forgotten = account.try_reserve({"total_tokens": 80})
    assert isinstance(account.try_reserve({"total_tokens": 80}), AccountExceeded)
    time.sleep(0.45)
    assert account.available("total_tokens") == 20
    assert account.usage().spent["total_tokens"] == 80 and account.usage().reserved == {}
    assert isinstance(account.try_reserve({"total_tokens": 30}), AccountExceeded)
    assert account.commit(forgotten, {"total_tokens": 30}) is False  # late: the truth replaces the bound
    assert account.usage().spent["total_tokens"] == 30
    assert account.available("total_tokens") == 70


def test_a_late_release_of_a_lapsed_reservation_gives_its_room_back(kind, target):
    account = open_store(kind, target).account(fresh_key("u"), "tokens=100", lease_s=0.3)
    never_ran = account.try_reserve({"total_tokens": 60})
    time.sleep(0.45)
    assert account.available("total_tokens") == 40
    account.release(never_ran)  # the call did not run after all
    assert account.available("total_tokens") == 100


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ops=st.lists(
        st.tuples(st.integers(1, 40), st.integers(0, 2), st.integers(0, 100)), min_size=1, max_size=30
    )
)
def test_the_store_agrees_with_a_reference_model(tmp_path, ops):
    """Any sequence of reserve / commit / release leaves exactly the committed figures, never over the cap."""
    store = SQLiteBudgetStore(tmp_path / "model.db")
    account = store.account(fresh_key("m"), "tokens=100")
    spent, live = 0, {}
    for n, (amount, action, share) in enumerate(ops):
        grant = account.try_reserve({"total_tokens": amount})
        fits = spent + sum(live.values()) + amount <= 100
        assert (not isinstance(grant, AccountExceeded)) == fits
        if fits:
            live[n] = amount
            if action == 0:
                used = amount * share // 100
                account.commit(grant, {"total_tokens": used})
                spent += used
                del live[n]
            elif action == 1:
                account.release(grant)
                del live[n]
        usage = account.usage()
        assert usage.spent.get("total_tokens", 0) == spent
        assert usage.reserved.get("total_tokens", 0) == sum(live.values())
    store.close()


# -- many processes --------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2])
def test_processes_sharing_a_key_never_overshoot_and_killed_ones_leak_nothing(kind, target, seed):
    """8 processes x 150 random reservations on one key; 3 are SIGKILLed mid-way. Sampled all along and at the
    end: spent + reserved never exceeds a cap; after one lease, nothing is left reserved."""
    key = fresh_key("shared")
    rng = random.Random(seed)
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), kind, target, key, str(seed * 100 + i), "150"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    store = open_store(kind, target, prefix="prop")
    limits = Budget.parse("usd=0.4,tokens=120000,search=250").limits()
    doomed = rng.sample(range(8), 3)
    kill_at = {i: time.monotonic() + rng.uniform(0.5, 2.0) for i in doomed}
    samples = 0
    while any(p.poll() is None for p in procs):
        for i, when in list(kill_at.items()):
            if time.monotonic() >= when:
                procs[i].send_signal(signal.SIGKILL)
                del kill_at[i]
        usage = store.usage(key, window="day", limits=limits)
        for resource, limit in limits.items():
            assert usage.spent.get(resource, 0) + usage.reserved.get(resource, 0) <= limit, (
                f"{usage} (a commit after its {LEASE_S} s lease is recorded anyway: was a worker starved?)"
            )
        samples += 1
        time.sleep(0.01)
    outputs = [p.communicate()[0] for p in procs]
    for i, p in enumerate(procs):
        if i not in doomed:
            assert p.returncode == 0, p.stderr.read() if p.stderr else ""
    lines = "".join(outputs).split()
    assert lines.count("refused") > 0, "the caps were never reached: the test would not show an overshoot"
    assert any(procs[i].returncode == -signal.SIGKILL for i in doomed)
    time.sleep(LEASE_S + 0.2)  # one lease of the workers
    usage = store.usage(key, window="day", limits=limits)
    assert usage.reserved == {}, f"leaked reservations: {usage.reserved}"
    for resource, limit in limits.items():
        assert usage.spent.get(resource, 0) <= limit
    print(
        f"{kind} seed {seed}: {samples} samples, {lines.count('ok')} ok, {lines.count('refused')} refused, "
        f"{lines.count('forgot')} forgotten, {lines.count('late')} late, spent {usage.to_dict()['spent']}"
    )


# -- runs ------------------------------------------------------------------------------------------------
@tool
def search(query: str) -> str:
    """Search the web."""
    return "1. [Paris] Paris is the capital of France."


def searcher() -> ScriptedModel:
    def script(messages, tools):
        if not any(m.role == "tool" for m in messages):
            return ScriptedModel.tool_calls([("search", {"query": "capital of France"})])
        return ScriptedModel.text("<answer>Paris</answer>")

    return ScriptedModel(script)


def test_an_account_caps_a_user_across_runs(kind, target):
    account = open_store(kind, target).account(fresh_key("user"), "search=2", window="day")
    agent = Agent(searcher(), [search], "search=5", planner="react")
    results = [agent.run("capital of France?", account=account) for _ in range(3)]
    assert [r.usage.tool_calls.get("search", 0) for r in results] == [1, 1, 0]
    assert account.usage().spent["tool:search"] == 2
    assert [r.answer for r in results[:2]] == ["Paris", "Paris"]
    # the third run sees the account's cap is used up before it asks the model for a search
    assert str(results[2].stop_reason) == "budget_exhausted: search"


def test_concurrent_runs_of_one_user_share_the_cap_exactly(kind, target):
    account = open_store(kind, target).account(fresh_key("user"), "search=7,llm_calls=40", window="day")
    agent = Agent(searcher(), [search], "search=5", planner="react")

    async def many():
        return await asyncio.gather(*(agent.arun("capital?", account=account) for _ in range(12)))

    results = asyncio.run(many())
    used = sum(r.usage.tool_calls.get("search", 0) for r in results)
    assert used == 7 == account.usage().spent["tool:search"]
    assert account.usage().reserved == {}


def test_the_model_sees_the_accounts_caps_in_its_budget_block(tmp_path):
    """docs/apps.md: the run's budget and its account's, both in the block after each tool result."""
    from budgetgraph import Agent, ScriptedModel, tool

    @tool
    def search(q: str) -> str:
        """Search."""
        return "1. [Paris] capital of France"

    def script(messages, tools):
        if not any(m.role == "tool" for m in messages):
            return ScriptedModel.tool_calls([("search", {"q": "capital"})])
        return ScriptedModel.text("<answer>Paris</answer>")

    store = SQLiteBudgetStore(tmp_path / "budgets.sqlite")
    account = store.account("ann", "search=10,llm_calls=50", window="day")
    result = Agent(ScriptedModel(script), [search], "search=3", planner="tracker").run("q?", account=account)
    block = next(m.content for m in result.messages if m.role == "tool")
    assert "search: used 1, remaining 2 of 3" in block  # the run's own cap
    assert "account search (this day, shared with other runs): used 1, remaining 9 of 10" in block
    assert "account llm calls (this day, shared with other runs): used 1, remaining" in block
    # BATS's per-tool block (any planner's with budget_block="per_tool") shows the account's caps too
    from budgetgraph import AgentOptions

    per_tool = AgentOptions(budget_block="per_tool")
    result = Agent(ScriptedModel(script), [search], "search=3", planner="tracker", options=per_tool).run(
        "q?", account=account
    )
    block = next(m.content for m in result.messages if m.role == "tool")
    assert "search: used 1, remaining 2 of 3" in block and "at most" in block  # the per-tool block
    assert "account search (this day, shared with other runs): used 2, remaining 8 of 10" in block
