"""Live limits: an operator changes an account's caps in the store while 8 processes hold reservations on it;
the change binds at each process's next reservation, never overshoots, and loses nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from budgetgraph import ConfigError, RedisBudgetStore, SQLiteBudgetStore

WORKER = Path(__file__).resolve().parent / "caps_worker.py"
SEARCH = "tool:search"


@pytest.fixture(params=["sqlite", "redis"])
def kind(request):
    return request.param


@pytest.fixture
def target(kind, tmp_path, request):
    return str(tmp_path / "budgets.db") if kind == "sqlite" else request.getfixturevalue("redis_url")


def _store(kind: str, target: str):
    return SQLiteBudgetStore(target) if kind == "sqlite" else RedisBudgetStore(target, prefix="live")


def _fleet(kind: str, target: str, key: str, hold_ms: int, stop: Path) -> list[subprocess.Popen[str]]:
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), kind, target, key, str(hold_ms), str(stop)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "started", p.stderr
    return procs


def _until(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def _stop(procs, stop: Path) -> int:
    stop.touch()
    total = 0
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        total += json.loads(out.strip().splitlines()[-1])["ok"]
    return total


def test_raising_a_cap_while_8_processes_hold_reservations_never_overshoots_it(kind, target, tmp_path):
    store, key, stop = _store(kind, target), f"acct-{uuid.uuid4().hex}", tmp_path / "stop"
    procs = _fleet(kind, target, key, 30, stop)
    try:
        usage = lambda: store.usage(key, limits={SEARCH: 1})  # noqa: E731
        _until(
            lambda: usage().spent.get(SEARCH, 0) + usage().reserved.get(SEARCH, 0) >= 20, 30, "20 are taken"
        )
        assert store.set_caps(key, {SEARCH: 60}) == {SEARCH: 60}  # while reservations are held
        seen = []

        def full() -> bool:
            now = usage()
            seen.append(now.spent.get(SEARCH, 0) + now.reserved.get(SEARCH, 0))
            return now.spent.get(SEARCH, 0) == 60

        _until(full, 30, "the raised cap is spent")
        time.sleep(0.3)  # the fleet keeps asking: every ask is refused now
    finally:
        committed = _stop(procs, stop)
    assert max(seen) <= 60 and committed == 60 == store.usage(key, limits={SEARCH: 1}).spent[SEARCH]


def test_lowering_a_cap_below_what_is_reserved_refuses_new_reservations_and_loses_nothing(
    kind, target, tmp_path
):
    store, key, stop = _store(kind, target), f"acct-{uuid.uuid4().hex}", tmp_path / "stop"
    store.set_caps(key, {SEARCH: 1000})
    procs = _fleet(kind, target, key, 300, stop)
    try:
        usage = lambda: store.usage(key, limits={SEARCH: 1})  # noqa: E731
        _until(lambda: usage().spent.get(SEARCH, 0) >= 8 and usage().reserved.get(SEARCH, 0) >= 4, 30, "held")
        store.set_caps(key, "search=3")  # below what is spent and reserved
        after = usage()
        taken = after.spent.get(SEARCH, 0) + after.reserved.get(SEARCH, 0)
        assert taken > 3
        time.sleep(0.8)  # the held reservations commit; no new one is granted
        final = usage()
    finally:
        committed = _stop(procs, stop)
    assert final.reserved.get(SEARCH, 0) == 0 and final.spent[SEARCH] == taken == committed
    account = store.account(key, {SEARCH: 20})
    assert account.available(SEARCH) == 0 and account.current_limits() == {SEARCH: 3}
    refused = account.try_reserve({SEARCH: 1})
    assert not hasattr(refused, "id") and refused.limit == 3 and refused.remaining == 0
    store.set_caps(key, {SEARCH: None})  # the operator's cap dropped: the account's own applies again
    assert store.caps(key) == {} and account.current_limits() == {SEARCH: 20}


def test_set_caps_checks_what_it_is_given(tmp_path):
    store = SQLiteBudgetStore(tmp_path / "b.db")
    with pytest.raises(ConfigError, match="'search' is not a budget key.*'tool:search'"):
        store.set_caps("u", {"search": 5})
    with pytest.raises(ConfigError, match="wall time"):
        store.set_caps("u", "seconds=5")
    with pytest.raises(ConfigError, match="negative"):
        store.set_caps("u", "usd=-1")
    with pytest.raises(ConfigError, match="account's key"):
        store.set_caps("", "usd=1")
    assert store.set_caps("u", "usd=2.5,search=4") == {"usd": Decimal("2.5"), SEARCH: 4}
    assert store.account("u", "usd=1").usage().limits == {"usd": Decimal("2.5"), SEARCH: 4}


def test_a_running_agent_sees_the_operators_change_in_its_next_budget_update(tmp_path):
    import asyncio

    from budgetgraph import Agent, ScriptedModel, tool
    from budgetgraph.agents import BudgetUpdate

    store = SQLiteBudgetStore(tmp_path / "b.db")
    account = store.account("team", {SEARCH: 2})

    @tool
    def search(query: str) -> str:
        """Search."""
        if query == "q0":
            store.set_caps("team", {SEARCH: 5})  # an operator raises the team's cap mid-run
        return f"hits for {query}"

    def reply(messages, tools):
        done = sum(m.role == "tool" for m in messages)
        if done >= 3:
            return ScriptedModel.text("<answer>done</answer>")
        return ScriptedModel.tool_calls([("search", {"query": f"q{done}"})])

    agent = Agent(ScriptedModel(reply), [search], "search=10", planner="tracker")

    async def go():
        return [e async for e in agent.astream("q", account=account)]

    events = asyncio.run(go())
    rows = [r for e in events if isinstance(e, BudgetUpdate) for r in e.resources if r["kind"] == "account"]
    assert [(r["used"], r["limit"]) for r in rows] == [(1, 5), (2, 5), (3, 5)]
    assert events[-1].result.usage.tool_calls == {"search": 3}  # beyond the account's first cap of 2
    tool_text = [m.content for m in events[-1].result.messages if m.role == "tool"]
    assert "remaining 4 of 5" in tool_text[0]  # the model's block shows the new cap too
