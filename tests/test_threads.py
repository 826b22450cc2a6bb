"""One owner per thread: two requests on one conversation thread never both continue from one checkpoint, on the
in-memory and SQLite checkpointers, in one process and across processes, with leases in SQLite and Redis."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from budgetgraph import (
    Agent,
    ConfigError,
    LocalLeases,
    RedisLeases,
    ScriptedModel,
    SQLiteLeases,
    ThreadBusy,
    ThreadPolicy,
    tool,
)
from budgetgraph.budget.leases import Holder

WORKER = Path(__file__).with_name("thread_worker.py")


def searcher(log: list[str], delay: float = 0.05):
    @tool
    async def search(q: str) -> str:
        """Search."""
        log.append(q)
        await asyncio.sleep(delay)
        return "hits"

    return search


def always_search(messages, tools):
    """Searches while it may (a new question's count starts after its own message)."""
    if not tools:
        return ScriptedModel.text("<answer>done</answer>")
    return ScriptedModel.tool_calls([("search", {"q": f"q{sum(m.role == 'tool' for m in messages)}"})])


def conversation_agent(saver, log, **kw) -> Agent:
    return Agent(
        ScriptedModel(always_search),
        [searcher(log)],
        "search=4",
        planner="react",
        checkpointer=saver,
        budget_scope="thread",
        **kw,
    )


@pytest.mark.parametrize("saver", ["memory", "sqlite"])
def test_three_messages_at_once_reject_two_and_keep_the_conversation_cap(saver, tmp_path):
    async def go():
        log: list[str] = []
        if saver == "memory":
            agent = conversation_agent(InMemorySaver(), log)
            return log, await asyncio.gather(
                *(agent.arun(f"m{i}", thread_id="c") for i in range(3)), return_exceptions=True
            )
        async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "ck.db")) as cp:
            agent = conversation_agent(cp, log)
            return log, await asyncio.gather(
                *(agent.arun(f"m{i}", thread_id="c") for i in range(3)), return_exceptions=True
            )

    log, results = asyncio.run(go())
    busy = [r for r in results if isinstance(r, ThreadBusy)]
    done = [r for r in results if not isinstance(r, BaseException)]
    assert len(busy) == 2 and len(done) == 1, results
    assert "this conversation is busy" in str(busy[0]) and "on_busy='enqueue'" in str(busy[0])
    assert len(log) == 4  # the one run spent the conversation's cap, nothing more
    assert done[0].usage.tool_calls == {"search": 4}


@pytest.mark.parametrize("saver", ["memory", "sqlite"])
def test_enqueued_messages_run_in_turn_each_from_the_last_checkpoint(saver, tmp_path):
    async def go():
        log: list[str] = []

        async def run(cp):
            agent = conversation_agent(cp, log, threads=ThreadPolicy(on_busy="enqueue", wait_s=20))
            results = await asyncio.gather(*(agent.arun(f"m{i}", thread_id="c") for i in range(3)))
            state = await agent.graph.aget_state({"configurable": {"thread_id": "c"}})
            return results, state.values

        if saver == "memory":
            return log, *(await run(InMemorySaver()))
        async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "ck.db")) as cp:
            return log, *(await run(cp))

    log, results, values = asyncio.run(go())
    assert len(log) == 4  # the cap of the conversation, across its three messages
    assert values["ledger"]["spent"]["tool:search"] == 4
    users = [m.content for m in values["messages"] if m.role == "user" and m.content.startswith("m")]
    assert sorted(users) == ["m0", "m1", "m2"]  # every message is in the one history: no branch was lost
    assert all(r.answer == "done" for r in results)


def test_a_per_call_on_busy_overrides_the_agents_policy():
    async def go():
        log: list[str] = []
        agent = conversation_agent(InMemorySaver(), log)  # rejects by default
        return await asyncio.gather(
            agent.arun("a", thread_id="c"), agent.arun("b", thread_id="c", on_busy="enqueue")
        )

    first, second = asyncio.run(go())
    assert first.usage.tool_calls == {"search": 4} and second.answer == "done"
    with pytest.raises(ConfigError, match="on_busy must be 'reject' or 'enqueue'"):
        asyncio.run(conversation_agent(InMemorySaver(), []).arun("x", thread_id="c", on_busy="queue"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="wait_s"):
        ThreadPolicy(wait_s=0)


def test_enqueue_gives_up_after_its_wait_with_a_clear_error():
    leases = LocalLeases()
    assert leases.take("thread:c", "someone-else", 30) is None
    agent = conversation_agent(
        InMemorySaver(), [], threads=ThreadPolicy(on_busy="enqueue", wait_s=0.3, leases=leases)
    )
    started = time.monotonic()
    with pytest.raises(ThreadBusy, match="after waiting 0.[3-9] s"):
        asyncio.run(agent.arun("x", thread_id="c"))
    assert time.monotonic() - started < 5


def pauser(saver, log) -> Agent:
    return Agent(
        ScriptedModel(always_search),
        [searcher(log, delay=0.2)],
        "search=2",
        planner="react",
        checkpointer=saver,
        on_exhausted="pause",
    )


def test_two_grants_for_one_pause_are_applied_once_rejected_or_queued():
    async def go(on_busy):
        log: list[str] = []
        agent = pauser(InMemorySaver(), log)
        first = await agent.arun("q", thread_id="t")
        assert first.budget_request is not None and len(log) == 2
        out = await asyncio.gather(
            agent.aresume("t", grant={"search": 2}, on_busy=on_busy),
            agent.aresume("t", grant={"search": 2}, on_busy=on_busy),
            return_exceptions=True,
        )
        return log, out

    log, (a, b) = asyncio.run(go("reject"))
    assert len(log) == 4 and isinstance(b, ThreadBusy) and a.ledger["limits"] == {"tool:search": 4}
    log, (a, b) = asyncio.run(go("enqueue"))
    assert len(log) == 4 and a.ledger["limits"] == {"tool:search": 4}
    assert isinstance(b, ConfigError) and "moved on while this request waited" in str(b)


def mailer_agent(saver, sent) -> Agent:
    @tool
    async def send_email(to: str) -> str:
        """Send an email."""
        sent.append(to)
        await asyncio.sleep(0.2)
        return "sent"

    def mailer(messages, tools):
        if any(m.role == "tool" for m in messages) or not tools:
            return ScriptedModel.text("<answer>mailed</answer>")
        return ScriptedModel.tool_calls([("send_email", {"to": "team@example.com"})])

    return Agent(
        ScriptedModel(mailer),
        [send_email],
        "send_email=1",
        planner="react",
        checkpointer=saver,
        approve=["send_email"],
        threads=ThreadPolicy(on_busy="enqueue"),
    )


def test_one_approval_decided_twice_sends_once_and_refuses_the_second():
    async def go():
        sent: list[str] = []
        agent = mailer_agent(InMemorySaver(), sent)
        paused = await agent.arun("mail the team", thread_id="t")
        call = paused.pending[0].id
        out = await asyncio.gather(
            agent.aresume("t", decisions="approve"),
            agent.aresume("t", decisions={call: "approve"}),
            return_exceptions=True,
        )
        late = await asyncio.gather(agent.aresume("t", decisions="approve"), return_exceptions=True)
        return sent, out, late

    sent, (a, b), (late,) = asyncio.run(go())
    assert sent == ["team@example.com"] and a.answer == "mailed"
    assert isinstance(b, ConfigError) and "moved on" in str(b)
    assert isinstance(late, ConfigError) and "no tool calls awaiting a decision" in str(late)


def test_a_new_question_on_a_paused_thread_is_refused_not_dropped():
    async def go():
        agent = pauser(InMemorySaver(), [])
        await agent.arun("q", thread_id="t")
        await agent.arun("another question", thread_id="t")

    with pytest.raises(ConfigError, match="is paused, waiting for grant= or grant='decline'"):
        asyncio.run(go())


def test_a_cap_change_waits_for_the_run_and_is_not_lost():
    """The operator's change is refused while a run holds the thread, or queued after it: never overwritten."""

    async def go():
        log: list[str] = []
        agent = Agent(
            ScriptedModel(always_search),
            [searcher(log, delay=0.1)],
            "search=10",
            planner="react",
            checkpointer=InMemorySaver(),
            budget_scope="thread",
        )
        await agent.arun("first", thread_id="c")  # spends all 10
        await agent.aset_caps("c", {"search": 12})
        run = asyncio.create_task(agent.arun("second", thread_id="c"))
        await asyncio.sleep(0.05)
        with pytest.raises(ThreadBusy):
            await agent.aset_caps("c", {"search": 13})
        caps = await agent.aset_caps("c", {"search": 13}, on_busy="enqueue")
        await run
        third = await agent.arun("third", thread_id="c")
        return log, caps, third

    log, caps, third = asyncio.run(go())
    assert caps == {"search": 13}
    assert len(log) == 13 and third.ledger["limits"] == {"tool:search": 13}


class _Stolen(LocalLeases):
    """A lease store where another owner takes the thread once the run has started (as after a stall past
    the lease): the run must stop before its next step."""

    def __init__(self) -> None:
        super().__init__()
        self.steal = False

    def take(self, name: str, owner: str, ttl_s: float) -> Holder | None:
        if self.steal:
            return Holder("intruder", 10.0)
        return super().take(name, owner, ttl_s)


def test_a_run_that_lost_its_thread_stops_before_its_next_step():
    store = _Stolen()
    log: list[str] = []

    @tool
    async def search(q: str) -> str:
        """Search."""
        log.append(q)
        store.steal = True
        await asyncio.sleep(0.2)  # the holder's renewal runs meanwhile and finds the thread taken
        return "hits"

    agent = Agent(
        ScriptedModel(always_search),
        [search],
        "search=5",
        planner="react",
        checkpointer=InMemorySaver(),
        threads=ThreadPolicy(leases=store, lease_s=0.2),
    )

    async def go():
        return await agent.arun("q", thread_id="t")

    with pytest.raises(ThreadBusy, match="taken over by another request"):
        asyncio.run(go())
    assert len(log) == 1  # one call ran; the run did not go on after its lease was gone


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_leases_are_one_owner_at_a_time_and_lapse(kind, tmp_path, request):
    store = (
        SQLiteLeases(tmp_path / "l.db")
        if kind == "sqlite"
        else RedisLeases(request.getfixturevalue("redis_url"))
    )
    assert store.take("t", "a", 0.3) is None
    held = store.take("t", "b", 0.3)
    assert held is not None and held.owner == "a" and 0 < held.seconds_left <= 0.3
    assert store.take("t", "a", 0.3) is None  # the holder renews
    store.drop("t", "b")  # not the holder: nothing happens
    assert store.take("t", "b", 0.3) is not None
    time.sleep(0.35)
    assert store.take("t", "b", 5) is None  # a lease nobody renewed lapsed
    store.drop("t", "b")
    assert store.take("t", "c", 5) is None


def _workers(*commands: list[str]) -> list[dict]:
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), *c], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for c in commands
    ]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=60)
        assert p.returncode == 0, stderr[-2000:]
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


@pytest.mark.parametrize("leases", ["checkpointer", "redis"])
def test_two_processes_resuming_one_paused_thread_run_it_once(leases, tmp_path, request):
    """Across processes: the SQLite checkpointer's own file holds the lease (or a Redis server, passed)."""
    where = request.getfixturevalue("redis_url") if leases == "redis" else ""
    db, log = str(tmp_path / "ck.db"), str(tmp_path / "calls.log")
    (started,) = _workers(["start", db, log, where])
    assert started["stop"] == "interrupted"
    go = str(time.time() + 2.5)
    results = _workers(["resume", db, log, where, go], ["resume", db, log, where, go])
    calls = Path(log).read_text().split()
    assert len(calls) == 4, (calls, results)  # 2, then one grant of 2: never two grants' worth
    outcomes = sorted(r.get("raised", "ran") for r in results)
    assert outcomes == ["ThreadBusy", "ran"], results
