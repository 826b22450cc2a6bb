"""Pause at exhaustion: the run interrupts where a budget runs out, and goes on when more is granted, in this
process or another (SQLite checkpointer), with grants checked where they enter."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from budgetgraph import Agent, Budget, ConfigError, ScriptedModel, SQLiteBudgetStore, tool

WORKER = Path(__file__).parent / "pause_worker.py"


def _worker(mode: str, db: Path, log: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(WORKER), mode, str(db), str(log), "thread-1"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_run_paused_and_killed_resumes_with_a_grant_in_a_new_process(tmp_path):
    db, log = tmp_path / "checkpoints.db", tmp_path / "calls.log"
    started = _worker("start", db, log)
    assert started.returncode == -9, started.stderr  # killed right after the pause
    paused = json.loads(started.stdout)
    assert paused["stop"] == "interrupted" and paused["answer"] is None
    request = paused["request"]
    assert request["resource"] == "search" and request["grantable"] == ["search", "fetch"]
    assert [(r["name"], r["used"], r["remaining"]) for r in request["resources"]] == [
        ("search", 1, 0),
        ("fetch", 1, 0),
    ]
    assert log.read_text().split("\n")[:-1] == ["search a", "fetch u"]

    resumed = _worker("resume", db, log)  # grants one more of each: the run goes on, then pauses again
    assert resumed.returncode == 0, resumed.stderr
    again = json.loads(resumed.stdout)
    assert again["stop"] == "interrupted" and again["limits"] == {"tool:search": 2, "tool:fetch": 2}
    ended = _worker("decline", db, log)
    assert ended.returncode == 0, ended.stderr
    final = json.loads(ended.stdout)
    # each call ran once across the three processes, and the spend is exactly the caps granted
    assert log.read_text().split("\n")[:-1] == ["search a", "fetch u", "search b", "fetch v"]
    assert final["tools"] == {"search": 2, "fetch": 2} and final["limits"] == again["limits"]
    assert final["answer"] == "42, from 4 results"
    assert final["stop"] == "budget_exhausted" and "No more budget was granted" in final["message"]


def _agent(log: list[str], budget: str = "search=1,fetch=1", **kw) -> Agent:
    @tool
    def search(query: str) -> str:
        """Search."""
        log.append(f"search {query}")
        return f"hits for {query}"

    @tool
    def fetch(url: str) -> str:
        """Fetch a page."""
        log.append(f"fetch {url}")
        return "the page says 42"

    def reply(messages, tools):
        done = sum(m.role == "tool" for m in messages)
        if not tools:
            return ScriptedModel.text(f"<answer>42 ({done} results)</answer>")
        if done % 2 == 0:
            return ScriptedModel.tool_calls([("search", {"query": f"q{done}"})])
        return ScriptedModel.tool_calls([("fetch", {"url": f"q{done}"})])

    kw.setdefault("checkpointer", InMemorySaver())
    return Agent(ScriptedModel(reply), [search, fetch], budget, on_exhausted="pause", **kw)


def test_a_bad_grant_is_refused_where_it_enters_and_loses_nothing():
    log: list[str] = []
    agent = _agent(log)
    first = agent.run("q", thread_id="t")
    assert first.stop_reason.kind == "interrupted" and first.budget_request is not None
    assert "grant=" in first.stop_reason.message and first.to_dict()["budget_request"]["resource"] == "search"
    for bad, says in [
        ({"serch": 1}, "cannot grant 'serch'.*did you mean 'search'"),
        ({"usd": "1"}, "cannot grant 'usd': the run does not cap it"),
        ({"search": -3}, "a whole number from 1"),
        ({"search": 0}, "a whole number from 1"),
        ({"search": True}, "positive amount"),
        ({"search": 10**12}, "a whole number from 1"),
        ({"search": 1.5}, "a whole number from 1"),
        (["search"], "a mapping"),
    ]:
        with pytest.raises(ConfigError, match=says):
            asyncio.run(agent.aresume("t", grant=bad))
    with pytest.raises(ConfigError, match="paused because a budget ran out"):
        asyncio.run(agent.aresume("t", decisions="approve"))
    with pytest.raises(ConfigError, match="paused because a budget ran out"):
        asyncio.run(agent.aresume("t"))
    assert log == ["search q0", "fetch q1"]  # nothing ran or moved on a refused grant
    result = asyncio.run(agent.aresume("t", grant={"fetch": "2"}))  # a count as text is read exactly
    # search stays spent (the model's searches are refused, and it goes on): the 2 fetches run, then it pauses
    assert (
        log == ["search q0", "fetch q1", "fetch q3", "fetch q5"] and result.stop_reason.kind == "interrupted"
    )
    assert result.ledger["limits"] == {"tool:search": 1, "tool:fetch": 3}
    ended = asyncio.run(agent.aresume("t", grant="decline"))
    assert ended.answer == "42 (6 results)" and ended.stop_reason.kind == "budget_exhausted"
    assert ended.usage.tool_calls == {"search": 1, "fetch": 3}


def test_the_pause_and_the_grant_are_events_and_sse():
    from budgetgraph import event_to_dict
    from budgetgraph.agents import BudgetGrant, BudgetRequest, FinalAnswer

    log: list[str] = []
    agent = _agent(log, "search=1,fetch=1,tool_calls=5")

    async def go():
        first = [e async for e in agent.astream("q", thread_id="s")]
        rest = [e async for e in agent.astream(thread_id="s", grant={"search": 1, "tool_calls": 1})]
        return first, rest

    first, rest = asyncio.run(go())
    (request,) = [e for e in first if isinstance(e, BudgetRequest)]
    assert request.thread_id == "s" and request.request["resource"] == "search"
    data = event_to_dict(request)
    assert data["type"] == "budget_request" and json.loads(json.dumps(data)) == data
    grants = [e for e in rest if isinstance(e, BudgetGrant)]
    assert [(g.resource, g.amount, g.limit, g.by) for g in grants] == [
        ("search", 1, 2, "app"),
        ("tool_calls", 1, 6, "app"),
    ]
    assert log == ["search q0", "fetch q1", "search q2"]
    assert isinstance(rest[-1], FinalAnswer) and rest[-1].result.budget_request is not None


def test_an_account_with_less_left_than_granted_refuses_and_the_run_answers(tmp_path):
    store = SQLiteBudgetStore(tmp_path / "budgets.db")
    account = store.account("user-1", {"tool:search": 2, "tool:fetch": 5})
    log: list[str] = []
    agent = _agent(log)
    first = asyncio.run(agent.arun("q", thread_id="a", account=account))
    assert first.stop_reason.kind == "interrupted"
    ended = asyncio.run(agent.aresume("a", grant={"search": 3}))  # the account has 1 search left
    assert ended.stop_reason.kind == "budget_exhausted" and "has 1 search left" in ended.stop_reason.message
    assert ended.answer == "42 (2 results)" and log == ["search q0", "fetch q1"]


def test_pause_needs_a_checkpointer_and_a_planner_that_can_pause():
    with pytest.raises(ConfigError, match="pass checkpointer="):
        _agent([], checkpointer=None)
    with pytest.raises(ConfigError, match="'plan_and_budget' planner cannot pause"):
        _agent([], planner="plan_and_budget")
    with pytest.raises(ConfigError, match="'answer', 'raise' or 'pause'"):
        Agent(ScriptedModel(lambda m, t: ScriptedModel.text("x")), [], on_exhausted="wait")  # type: ignore[arg-type]


def test_a_grant_of_dollars_is_exact(tmp_path):
    from decimal import Decimal

    from budgetgraph.agents.pause import read_grant
    from budgetgraph.budget.ledger import Ledger

    ledger = Ledger(Budget.parse("usd=0.01,tokens=100"))
    assert read_grant({"usd": "0.10", "tokens": 50}, ledger) == {"usd": Decimal("0.10"), "total_tokens": 50}
    assert read_grant({"grant": {"usd": 0.25}}, ledger) == {"usd": Decimal("0.25")}
    assert read_grant("decline", ledger) == {} and read_grant(None, ledger) == {}
    for bad in ("nan", "inf", "-1", "0", "x"):
        with pytest.raises(ConfigError, match="dollar"):
            read_grant({"usd": bad}, ledger)


@pytest.mark.model
def test_the_embedded_model_pauses_on_its_token_cap_and_goes_on_when_granted(mini_corpus):
    pytest.importorskip("llama_cpp", reason="the embedded model needs pip install 'budgetgraph[local]'")
    from budgetgraph.models.registry import infer_model

    agent = Agent(
        infer_model("local:0.5b"),  # the small sibling: the same path, a third of the time
        mini_corpus.tools(),
        "search=2,open=2,tokens=2000",
        planner="tracker",
        max_tokens=64,
        answer_max_tokens=48,
        checkpointer=InMemorySaver(),
        on_exhausted="pause",
    )
    first = agent.run("Who designed the Apple Remote?", thread_id="m")
    assert first.stop_reason.kind == "interrupted", first.stop_reason
    assert first.budget_request is not None and first.budget_request["resource"] == "total_tokens"
    assert first.usage.total_tokens <= 2000 and first.usage.llm_calls >= 1  # it paused after real work
    more = asyncio.run(agent.aresume("m", grant={"tokens": 1500}))
    assert more.usage.total_tokens <= 3500 and more.usage.llm_calls > first.usage.llm_calls
    final = more
    if final.stop_reason.kind == "interrupted":
        final = asyncio.run(agent.aresume("m", grant="decline"))
    assert final.answer and final.stop_reason.kind in ("answered", "budget_exhausted")
    assert final.usage.total_tokens <= 3500
    assert final.usage.tool_calls.get("search", 0) <= 2 and final.usage.tool_calls.get("open", 0) <= 2


def test_an_operator_changes_a_conversations_caps_through_its_thread():
    log: list[str] = []

    @tool
    def search(query: str) -> str:
        """Search."""
        log.append(query)
        return f"hits for {query}"

    def reply(messages, tools):
        if not tools or messages[-1].role == "tool":
            return ScriptedModel.text("<answer>done</answer>")
        return ScriptedModel.tool_calls([("search", {"query": f"q{len(log)}"})])

    agent = Agent(
        ScriptedModel(reply),
        [search],
        "search=2",
        planner="react",
        checkpointer=InMemorySaver(),
        budget_scope="thread",
    )
    for _ in range(3):
        agent.run("q", thread_id="conv")
    assert log == ["q0", "q1"]  # the conversation's cap: the third run found it spent
    with pytest.raises(ConfigError, match="cannot be capped at 1: 2 is already spent"):
        asyncio.run(agent.aset_caps("conv", {"search": 1}))
    with pytest.raises(ConfigError, match="cannot grant 'usd'"):
        asyncio.run(agent.aset_caps("conv", {"search": 4, "usd": "1"}))
    assert asyncio.run(agent.aset_caps("conv", {"search": 3})) == {"search": 3}
    agent.run("q", thread_id="conv")
    assert log == ["q0", "q1", "q2"]
    with pytest.raises(ConfigError, match="no checkpoint"):
        asyncio.run(agent.aset_caps("other", {"search": 3}))
    paused = _agent([])
    paused.run("q", thread_id="p")
    with pytest.raises(ConfigError, match="paused or mid-run"):
        asyncio.run(paused.aset_caps("p", {"search": 3}))


def test_a_resume_takes_a_budget_for_the_resources_the_run_caps():
    log: list[str] = []
    agent = _agent(log)
    assert agent.run("q", thread_id="t").stop_reason.kind == "interrupted"  # search=1 spent, paused
    with pytest.raises(ConfigError, match="does not cap usd"):
        asyncio.run(agent.aresume("t", grant={"search": 1}, budget="search=1,fetch=2,usd=1"))
    with pytest.raises(ConfigError, match="search cannot be capped at 0: 1 is already spent"):
        asyncio.run(agent.aresume("t", grant={"search": 1}, budget="search=0,fetch=2"))
    assert log == ["search q0", "fetch q1"]  # a refused budget changes nothing
    result = asyncio.run(agent.aresume("t", grant={"search": 1}, budget="search=1,fetch=2"))
    # the run's caps are now search 1 + the grant's 1, fetch 2: one more search, one more fetch, then a pause
    assert result.ledger["limits"] == {"tool:search": 2, "tool:fetch": 2}
    assert log == ["search q0", "fetch q1", "search q2", "fetch q3"]
