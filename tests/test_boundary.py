"""The boundary: every number, name and flow that comes from outside is checked where it enters, and what cannot
be trusted is charged at its bound. One test per script of ``../shared/repro/boundary`` (named in each), and a
property test with a hostile backend whose own count of what it served is the ground truth."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from langgraph.checkpoint.memory import InMemorySaver

from budgetgraph import (
    Agent,
    Budget,
    ConfigError,
    Ledger,
    PriceTable,
    RedisBudgetStore,
    ScriptedModel,
    SQLiteBudgetStore,
    tool,
)
from budgetgraph.budget import ModelPrice
from budgetgraph.models.messages import ToolCall
from budgetgraph.models.openai import OpenAIModel

sys.path.insert(0, str(Path(__file__).parent))
from servers.fake_openai import FakeOpenAI  # noqa: E402

HERE = Path(__file__).parent
EXAMPLES = int(
    os.environ.get("BUDGETGRAPH_BOUNDARY_EXAMPLES", "100")
)  # the hostile-backend property's episodes
TALLY: Counter[str] = Counter()
PRICES = PriceTable(models={"fake": ModelPrice.of(input=1, output=4)})  # dollars per million tokens


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        return SQLiteBudgetStore(tmp_path / "budgets.db")
    return RedisBudgetStore(request.getfixturevalue("redis_url"), prefix=f"b{uuid.uuid4().hex[:8]}")


@tool
def search(queries: list[str]) -> str:
    """Search."""
    return "Paris is the capital of France."


def fake_model(server: FakeOpenAI) -> OpenAIModel:
    return OpenAIModel("fake", base_url=server.url, max_attempts=1, api_key="sk-test")


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``budgetgraph ARGS`` in a child process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "budgetgraph.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def served(server: FakeOpenAI) -> tuple[int, int]:
    """What the fake server really served (its own count): prompt and completion tokens."""
    return server.billed("prompt_tokens"), server.billed("completion_tokens")


# -- usage reports (neg_usage.py) ------------------------------------------------------------------------
def negative(usage: dict[str, Any], n: int) -> dict[str, Any]:
    return {"prompt_tokens": -40000, "completion_tokens": -40000, "total_tokens": -80000}


def test_negative_usage_is_charged_at_the_bound_and_stops_the_run(store: Any) -> None:
    with FakeOpenAI("normal", lie=negative) as server:
        agent = Agent(
            fake_model(server),
            [search],
            "search=40,tokens=3000,usd=0.01",
            planner="react",
            prices=PRICES,
            max_tokens=200,
            max_turns=30,
        )
        result = agent.run("capital of France?")
        assert server.calls == 1  # an honest run makes 3-4 calls; the lying one made 31 before
        assert result.stop_reason.kind == "overrun" and result.stop_reason.resource == "usage"
        assert "prompt_tokens=-40000" in result.stop_reason.message
        u = result.usage
        prompt, completion = served(server)
        assert u.input_tokens >= prompt and u.output_tokens >= completion and u.total_tokens <= 3000
        assert Decimal(0) < u.usd <= Decimal("0.01")

        account = store.account("user:mallory", "tokens=5000,usd=0.05", window="day")
        before = server.calls
        Agent(
            fake_model(server),
            [search],
            "search=5",
            planner="react",
            prices=PRICES,
            max_tokens=200,
            max_turns=8,
        ).run("q", account=account)
        spent = account.usage().spent
        assert all(v >= 0 for v in spent.values()), spent
        assert spent["total_tokens"] >= sum(r["usage"]["total_tokens"] for r in server.requests[before:])
        left = account.usage().remaining("total_tokens")
        assert left is not None and 0 <= left <= 5000


LIES = {
    "NaN": lambda u, n: {**u, "prompt_tokens": float("nan")},
    "a string": lambda u, n: {**u, "completion_tokens": "lots"},
    "missing completion": lambda u, n: {"prompt_tokens": u["prompt_tokens"]},
    "huge": lambda u, n: {**u, "completion_tokens": 10**15},
    "cached above input": lambda u, n: {**u, "prompt_tokens_details": {"cached_tokens": 10**6}},
    "one token for the reply": lambda u, n: {**u, "completion_tokens": 1},
    "one token for the prompt": lambda u, n: {**u, "prompt_tokens": 1},
}


@pytest.mark.parametrize("lie", list(LIES))
def test_an_impossible_usage_report_is_a_backend_fault_charged_at_the_bound(lie: str) -> None:
    with FakeOpenAI("normal", lie=LIES[lie]) as server:
        result = Agent(
            fake_model(server), [search], "search=3", planner="react", prices=PRICES, max_tokens=100
        ).run("capital of France?")
        assert server.calls == 1
        assert (result.stop_reason.kind, result.stop_reason.resource) == ("overrun", "usage")
        prompt, completion = served(server)
        assert result.usage.input_tokens >= prompt and result.usage.output_tokens >= completion


def test_an_honest_server_is_charged_what_it_reports() -> None:
    with FakeOpenAI("normal") as server:
        result = Agent(
            fake_model(server), [search], "search=1", planner="react", prices=PRICES, max_tokens=100
        ).run("capital of France?")
    assert result.stop_reason.kind != "overrun"
    assert (result.usage.input_tokens, result.usage.output_tokens) == served(server)


def test_the_ledger_and_every_store_refuse_negative_and_non_finite_amounts(store: Any) -> None:
    ledger = Ledger(Budget(total_tokens=100))
    held = ledger.reserve({"total_tokens": 10})
    for bad in (-5, float("nan"), float("inf"), "3"):
        with pytest.raises(ConfigError, match="total_tokens"):
            ledger.commit(held, {"total_tokens": bad})
    with pytest.raises(ConfigError):
        ledger.try_reserve({"total_tokens": -1})
    ledger.commit(held, {"total_tokens": 4})
    assert ledger.remaining("total_tokens") == 96
    account = store.account(f"k{uuid.uuid4().hex}", "usd=1,search=5,tokens=1000")
    grant = account.try_reserve({"tool:search": 1, "tool_calls": 1})
    for amounts in ({"tool:search": -4}, {"total_tokens": float("nan")}, {"total_tokens": 10**25}):
        with pytest.raises(ConfigError):
            account.commit(grant, amounts)
        with pytest.raises(ConfigError):
            account.try_reserve(amounts)
    with pytest.raises(ConfigError, match="above what a store keeps"):
        store.account("k", {"total_tokens": 2**63})
    account.commit(grant, {"tool:search": 1, "tool_calls": 1})
    assert account.usage().remaining("tool:search") == 4


# -- names (redis_name_injection.py, mcp_evil_name.py, redis_poison_lease.py) ------------------------------
@tool(price="0.01")
def paid(q: str) -> str:
    """A paid API ($0.01 a call)."""
    return "ok"


def script_of(turns: list[list[tuple[str, dict[str, Any]]]]) -> ScriptedModel:
    def fn(messages: Any, tools: Any) -> Any:
        n = sum(1 for m in messages if m.role == "assistant")
        return (
            ScriptedModel.tool_calls(turns[n])
            if tools and n < len(turns)
            else ScriptedModel.text("<answer>x</answer>")
        )

    return ScriptedModel(fn)


def test_an_mcp_tool_name_cannot_forge_a_store_encoding(store: Any) -> None:
    from budgetgraph.tools.mcp import mcp_tools

    async def main() -> None:
        async with mcp_tools([sys.executable, str(HERE / "servers" / "mcp_evil.py")], timeout=20) as evil:
            names = sorted(t.name for t in evil)
            assert names == ["lookup_1_usd_500000000000_tool_calls_1000_z", "x_0_y"]  # renamed, and said so
            account = store.account(f"user:{uuid.uuid4().hex}", "usd=0.05,tools=5", window="day")
            lookup = names[0]
            await Agent(
                script_of([[(lookup, {"q": c})] for c in "abc"]), [*evil, paid], None, planner="react"
            ).arun("q", account=account)
            assert account.usage().spent["tool_calls"] == 3 and "usd" not in account.usage().spent
            r = await Agent(
                script_of([[("paid", {"q": str(i)})] for i in range(20)]),
                [paid],
                None,
                planner="react",
                max_turns=25,
            ).arun("q", account=account)
            assert r.usage.tool_calls.get("paid", 0) == 2  # tools=5 less the 3 lookups
            spent = account.usage().spent
            assert spent["tool_calls"] == 5 and spent["usd"] == Decimal("0.02")

    asyncio.run(main())


def test_a_name_outside_the_grammar_never_reaches_a_store(store: Any) -> None:
    account = store.account(f"user:{uuid.uuid4().hex}", "usd=5,tools=100", window="day", lease_s=0.3)
    with pytest.raises(ConfigError, match="not allowed"):
        account.try_reserve({"tool:x=0;y": 1, "tool_calls": 1})
    lapsed = account.try_reserve({"tool:x_0_y": 1, "tool_calls": 1})
    time.sleep(0.45)  # the lease lapses: every later operation on the key still works
    assert not isinstance(account.try_reserve({"tool:search": 1, "tool_calls": 1}), Exception)
    account.commit(lapsed, {"tool:x_0_y": 1, "tool_calls": 1})
    assert account.usage().spent["tool:x_0_y"] == 1


@pytest.mark.parametrize(
    "name", ["x=0;y", "lookup;usd=5", "a b", "naïve", "", "1abc", "a" * 65, "web.search"]
)
def test_one_name_grammar_for_tools_and_budget_keys(name: str) -> None:
    with pytest.raises(ConfigError, match="not allowed"):
        tool(name=name)(lambda q: q)
    with pytest.raises(ConfigError):
        Budget(tool_calls={name: 1})
    if name:  # an empty budget_key means the tool's own name
        with pytest.raises(ConfigError):
            tool(name="fine", budget_key=name)(lambda q: q)


# -- budgets that name nothing ---------------------------------------------------------------------------
def test_a_budget_typo_is_an_error_that_names_the_closest_tool() -> None:
    with pytest.raises(ConfigError, match=r"'serch'.*did you mean 'search'"):
        Budget.parse("serch=1", ["search", "open"])

    @tool
    def web_search(q: str) -> str:
        """Search."""
        return ""

    @tool
    def fetch_page(url: str) -> str:
        """Fetch."""
        return ""

    for text, near in (("search=3,fetch=2", "web_search"), ("web_search=3,fetch=2", "fetch_page")):
        with pytest.raises(ConfigError, match=f"did you mean '{near}'"):
            Agent(ScriptedModel([]), [web_search, fetch_page], text)
    with pytest.raises(ConfigError, match="did you mean 'web_search'"):
        Agent(ScriptedModel([]), [web_search, fetch_page], Budget(tool_calls={"web_serch": 3}))
    for bad in ("search=٣", "search=+5", "search= 5", "search =5", "usd=1e3", "usd=-0.5"):
        with pytest.raises(ConfigError):
            Budget.parse(bad, ["search"])


def test_the_cli_refuses_a_budget_typo_naming_the_tool(tmp_path: Path) -> None:
    run = cli("run", "q", "--corpus", str(HERE.parent / "docs"), "--model", "scripted", "--budget", "serch=1")
    assert run.returncode != 0 and "did you mean 'search'" in run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    ev = _sweep(tmp_path / "r.jsonl", budget="serch=1")
    assert ev.returncode != 0 and "did you mean 'search'" in ev.stdout + ev.stderr
    assert not (tmp_path / "r.jsonl").exists()


# -- resume keeps its account (approval_resume_account.py), the answer hold (account_final_answer.py) -----
SENT: list[str] = []


@tool
def send_email(to: str, body: str) -> str:
    """Send an email."""
    SENT.append(to)
    return f"sent to {to}"


def mailer(messages: Any, tools: Any) -> Any:
    if tools and not any(m.role == "tool" for m in messages):
        return ScriptedModel.tool_calls([("send_email", {"to": "team@example.com", "body": "hi"})])
    return ScriptedModel.text("<answer>done</answer>")


def mail_agent() -> Agent:
    """An agent that mails once, each call waiting for approval."""
    return Agent(
        ScriptedModel(mailer),
        [send_email],
        "send_email=5",
        planner="react",
        checkpointer=InMemorySaver(),
        approve=["send_email"],
    )


def test_a_resume_after_approval_spends_from_the_account_the_run_started_with(store: Any) -> None:
    SENT.clear()
    account = store.account(f"user:{uuid.uuid4().hex}", "send_email=1", window="day")
    agent = mail_agent()

    async def main() -> None:
        for i in range(4):
            paused = await agent.arun("mail the team", thread_id=f"t{i}", account=account)
            if paused.stop_reason.kind == "interrupted":
                await agent.aresume(f"t{i}", decisions="approve")  # as docs/apps.md shows: no account=

    asyncio.run(main())
    assert SENT == ["team@example.com"]
    assert account.usage().spent["tool:send_email"] == 1


def test_a_resume_cannot_swap_its_account_and_says_when_it_cannot_reopen_one(tmp_path: Path) -> None:
    from budgetgraph.budget.store import Account

    store = SQLiteBudgetStore(tmp_path / "s.db")
    account = store.account("user:ann", "send_email=3", window="day")
    agent = mail_agent()
    asyncio.run(agent.arun("mail", thread_id="t", account=account))
    other = store.account("user:bob", "send_email=3", window="day")
    with pytest.raises(ConfigError, match="cannot resume on 'user:bob'"):
        asyncio.run(agent.aresume("t", decisions="approve", account=other))
    described = account.describe()
    assert "secret" not in json.dumps(described) and described["store"]["path"].endswith("s.db")
    reopened = Account.from_description({**described, "store": {**described["store"], "instance": "gone"}})
    assert reopened.key == "user:ann" and isinstance(reopened.store, SQLiteBudgetStore)
    redis = {"kind": "RedisBudgetStore", "url": "redis://:***@127.0.0.1:6390/0", "secret": True}
    with pytest.raises(ConfigError, match="pass account= to aresume"):
        Account.from_description({**described, "store": redis})


def test_the_final_answer_reserve_is_held_in_the_account_too(tmp_path: Path) -> None:
    def searcher(messages: Any, tools: Any) -> Any:
        n = sum(1 for m in messages if m.role == "tool")
        if tools and n < 10:
            return ScriptedModel.tool_calls([("search", {"queries": [str(n)]})])
        return ScriptedModel.text("<answer>Paris</answer>")

    store = SQLiteBudgetStore(tmp_path / "s.db")
    for caps in ("llm_calls=3", "tokens=3000"):
        account = store.account(f"user:{caps}", caps, window="day")
        r = Agent(ScriptedModel(searcher), [search], "search=10", planner="react").run("q", account=account)
        assert r.answer == "Paris", (caps, r.stop_reason)
        usage = account.usage()
        for key, cap in account.limits.items():
            assert usage.spent.get(key, 0) <= cap


def test_a_call_whose_commit_failed_stays_spent_after_its_lease(tmp_path: Path) -> None:
    """store_commit_fails.py: the store fails between reserve and commit; the lease lapses into spend."""
    from budgetgraph.errors import BudgetStoreError

    ran: list[str] = []

    @tool(price="1.00")
    def dear(q: str) -> str:
        """A $1 API call."""
        ran.append(q)
        return "ok"

    store = SQLiteBudgetStore(tmp_path / "s.db")
    real = store._commit

    def flaky(key: str, bucket: str, rid: str, actual: Any, ttl: Any) -> bool:
        if "tool:dear" in actual:
            raise BudgetStoreError("simulated: the store is unreachable at commit time")
        return real(key, bucket, rid, actual, ttl)

    store._commit = flaky  # type: ignore[method-assign]
    account = store.account("user:ann", "usd=3", window="day", lease_s=0.3)
    with pytest.raises(BudgetStoreError):
        Agent(script_of([[("dear", {"q": "a"})]]), [dear], None, planner="react").run("q", account=account)
    time.sleep(0.45)
    assert ran == ["a"] and account.usage().spent["usd"] == Decimal("1")


# -- tool-call ids, secrets, deadlines, the crash re-run -------------------------------------------------
def test_two_tool_calls_with_one_id_are_two_calls_each_decided_once() -> None:
    SENT.clear()
    dup = [
        ToolCall("call_1", "send_email", {"to": "team@example.com", "body": "report"}),
        ToolCall("call_1", "send_email", {"to": "attacker@evil.example", "body": "secrets"}),
    ]

    def fn(messages: Any, tools: Any) -> Any:
        if tools and not any(m.role == "tool" for m in messages):
            return ScriptedModel.tool_calls(dup)
        return ScriptedModel.text("<answer>done</answer>")

    agent = Agent(
        ScriptedModel(fn),
        [send_email],
        "send_email=5",
        planner="react",
        checkpointer=InMemorySaver(),
        approve=["send_email"],
    )
    paused = agent.run("mail", thread_id="d")
    ids = [c.id for c in paused.pending]
    assert len(set(ids)) == 2 and ids[0] == "call_1"
    done = asyncio.run(agent.aresume("d", decisions={"call_1": "approve", ids[1]: "reject"}))
    assert SENT == ["team@example.com"] and done.usage.tool_calls == {"send_email": 1}
    answered = [m.tool_call_id for m in done.messages if m.role == "tool"]
    assert sorted(answered) == sorted(ids)


def test_a_store_password_never_reaches_the_browser_a_repr_or_a_stop_message(monkeypatch: Any) -> None:
    from budgetgraph._redact import redact
    from budgetgraph.agents.sse import sse_events

    store = RedisBudgetStore("redis://:S3cretRedisPassw0rd@127.0.0.1:1/0")
    assert "S3cret" not in repr(store) and "***" in repr(store)
    account = store.account("user:ann", "search=6", window="day")
    agent = Agent(ScriptedModel(lambda m, t: ScriptedModel.text("<answer>a</answer>")), [search], "search=2")

    async def main() -> list[str]:
        return [e async for e in sse_events(agent, "q", account=account)]

    events = asyncio.run(main())
    assert events and events[-1].startswith("event: error") and not any("S3cret" in e for e in events)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary-abcdefghijklmnop")
    text = redact("key sk-canary-abcdefghijklmnop, url https://u:pw1234567@h/x, Bearer abcdefghijklmnop12")
    assert "sk-canary" not in text and "pw1234567" not in text and "abcdefghijklmnop12" not in text


def test_a_call_cut_at_the_deadline_is_charged_what_the_provider_may_bill() -> None:
    """A conformance harness saw 110 tokens billed and 0 recorded: with only a seconds cap, the reservation held
    no tokens. A cut call is charged its input and output bound, like a client timeout."""
    with FakeOpenAI("normal", stall=3.0) as server:
        r = Agent(
            fake_model(server),
            [search],
            "search=3,seconds=1.5",
            planner="react",
            prices=PRICES,
            max_tokens=100,
        ).run("q")
        prompt, completion = served(server)
    assert r.stop_reason.kind == "budget_exhausted" and r.stop_reason.resource == "seconds"
    assert r.usage.llm_calls == 1 and r.usage.input_tokens >= prompt and r.usage.output_tokens >= completion
    assert r.usage.usd > 0


def test_an_idempotent_call_re_run_after_a_crash_goes_through_the_meter() -> None:
    """It runs under the run's seconds left, not its own timeout, and is not charged twice."""

    class Crash(BaseException):
        pass

    state = {"n": 0}

    @tool(idempotent=True, timeout=60)
    def slow(q: str) -> str:
        """Slow and idempotent."""
        state["n"] += 1
        if state["n"] == 1:
            raise Crash()
        time.sleep(20)
        return "late"

    saver = InMemorySaver()
    script = script_of([[("slow", {"q": "a"})]])
    with pytest.raises(Crash):
        Agent(script, [slow], "slow=1,seconds=3", planner="react", checkpointer=saver).run("q", thread_id="t")
    start = time.monotonic()
    again = Agent(
        script_of([[("slow", {"q": "a"})]]), [slow], "slow=1,seconds=3", planner="react", checkpointer=saver
    )
    result = asyncio.run(again.aresume("t"))
    assert time.monotonic() - start < 8  # cut by the run's deadline, not the tool's 60 s
    assert result.usage.tool_calls == {"slow": 1}


# -- the lows --------------------------------------------------------------------------------------------
def test_a_tools_own_failures_never_end_the_run() -> None:
    @tool(units=lambda args: 1 // 0)
    def sized(q: str) -> str:
        """Sized by a broken callback."""
        return "x"

    @tool
    def quits(q: str) -> str:
        """Calls sys.exit."""
        raise SystemExit(3)

    for t in (sized, quits):
        r = Agent(script_of([[(t.name, {"q": "a"})]]), [t], None, planner="react").run("q")
        assert r.stop_reason.kind == "answered" and r.answer == "x"
        assert any(m.role == "tool" and m.content.startswith("Error") for m in r.messages)
    odd = ScriptedModel.tool_calls([ToolCall("c1", "search", ["not", "a", "mapping"])])  # type: ignore[arg-type]
    r = Agent(
        ScriptedModel([odd, ScriptedModel.text("<answer>x</answer>")]), [search], None, planner="react"
    ).run("q")
    assert r.stop_reason.kind == "answered"
    assert "must be a JSON object" in next(m.content for m in r.messages if m.role == "tool")


def test_hostile_files_are_clear_errors(tmp_path: Path) -> None:
    from budgetgraph.envs.hotpotqa import read_hotpot
    from budgetgraph.envs.qa import QAEnv

    (tmp_path / "p.yaml").write_bytes(b"models:\n  x: {input: 1, output: \xff}\n")
    with pytest.raises(ConfigError, match=r"p.yaml:2: not UTF-8"):
        PriceTable.from_file(tmp_path / "p.yaml")
    (tmp_path / "c.jsonl").write_text('{"id": "1", "title": "t", "text": "x"}\n')
    (tmp_path / "q.jsonl").write_bytes(b'{"id": "1", "question": "q\xff", "answers": ["a"]}\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        QAEnv(str(tmp_path / "q.jsonl"), str(tmp_path / "c.jsonl"))
    (tmp_path / "deep.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        read_hotpot(tmp_path / "deep.jsonl")
    with pytest.raises(ConfigError, match="nested too deeply"):
        QAEnv(str(tmp_path / "deep.jsonl"), str(tmp_path / "c.jsonl"))


# -- results files (results_tamper.sh, results_read_race.py, view_xss.py) -------------------------------
def _sweep(out: Path, *extra: str, budget: str = "2") -> subprocess.CompletedProcess[str]:
    data = HERE / "data" / "multihop_mini.jsonl"
    return cli(
        "eval", "hotpotqa", "--data", str(data), "--model", "scripted", "--planner", "react", "--budget", budget,
        "--limit", "3", "--no-progress", "--out", str(out), *extra,
    )  # fmt: skip


def _report(*args: str) -> subprocess.CompletedProcess[str]:
    return cli("report", *args)


def test_report_refuses_files_and_lines_from_another_configuration(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert _sweep(a).returncode == 0 and _sweep(b, "--max-tokens", "32").returncode == 0
    both = _report(str(a), str(b))
    assert both.returncode != 0 and "another configuration" in both.stdout + both.stderr
    assert "max_tokens" in both.stdout + both.stderr
    assert _report(str(a), str(b), "--mixed").returncode == 0
    foreign = [line for line in b.read_text().splitlines() if '"episode"' in line][:1]
    with a.open("a") as fh:
        fh.write(foreign[0] + "\n")
    copied = _report(str(a))
    assert copied.returncode != 0 and "copied from another results file" in copied.stdout + copied.stderr


def test_reading_a_results_file_never_writes_it(tmp_path: Path) -> None:
    from budgetgraph.envs.results import ResultsFile

    out = tmp_path / "r.jsonl"
    assert _sweep(out).returncode == 0
    growing = out.read_bytes() + b'{"type": "episode", "task_id": "x", "pla'  # a line being written now
    out.write_bytes(growing)
    header, records = ResultsFile(out).read()
    assert header is not None and len(records) == 3 and out.read_bytes() == growing


def test_the_view_page_escapes_every_angle_bracket(tmp_path: Path) -> None:
    from budgetgraph.envs.view import _embed

    hostile = ["</script><script>alert(1)</script>", "<!--", "<\\/script>", "\u2028", "&lt;"]
    text = _embed({"files": hostile})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"files": hostile}


# -- the property: a hostile backend never loosens a cap -------------------------------------------------
def _lie(kind: str, scale: float) -> Any:
    def lie(usage: dict[str, Any], n: int) -> Any:
        if kind == "honest":
            return usage
        if kind == "none":
            return None
        if kind == "negative":
            return {**usage, "completion_tokens": -int(1 + scale * 1000)}
        if kind == "nan":
            return {**usage, "prompt_tokens": math.nan}
        if kind == "zero":
            return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        if kind == "huge":
            return {**usage, "completion_tokens": int(10**6 * (1 + scale))}
        if kind == "missing":
            return {"total_tokens": usage["total_tokens"]}
        # under-reported: a share of the truth (a share our floor cannot tell from honest is reported below)
        return {
            **usage,
            "prompt_tokens": int(usage["prompt_tokens"] * scale),
            "completion_tokens": int(usage["completion_tokens"] * scale),
        }

    return lie


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kinds=st.lists(
        st.sampled_from(["honest", "none", "negative", "nan", "zero", "huge", "missing", "under"]),
        min_size=1,
        max_size=4,
    ),
    scale=st.sampled_from([0.0, 0.01, 0.1, 0.3]),
    caps=st.fixed_dictionaries(
        {},
        optional={
            "tokens": st.integers(800, 6000),
            "llm_calls": st.integers(1, 6),
            "search": st.integers(0, 4),
        },
    ),
    account_caps=st.fixed_dictionaries(
        {"tokens": st.integers(1500, 8000)}, optional={"search": st.integers(0, 5)}
    ),
    where=st.sampled_from(["none", "sqlite", "redis"]),
    crash=st.booleans(),
    approve=st.booleans(),
)
# every lie, store, crash and approval at least once, whatever the random draws (the check below counts them)
@example(
    kinds=["honest", "none", "negative", "nan"],
    scale=0.1,
    caps={"tokens": 3000},
    account_caps={"tokens": 5000},
    where="sqlite",
    crash=True,
    approve=True,
)
@example(
    kinds=["zero", "huge", "missing", "under"],
    scale=0.3,
    caps={"search": 2},
    account_caps={"tokens": 4000, "search": 3},
    where="redis",
    crash=False,
    approve=False,
)
@example(
    kinds=["missing"],
    scale=0.0,
    caps={},
    account_caps={"tokens": 2000},
    where="none",
    crash=True,
    approve=False,
)
def test_a_hostile_backend_never_overshoots_a_run_or_account_cap(
    tmp_path: Path,
    redis_url: str,
    kinds: list[str],
    scale: float,
    caps: dict[str, int],
    account_caps: dict[str, int],
    where: str,
    crash: bool,
    approve: bool,
) -> None:
    """Random usage reports (negative, zero, NaN, huge, missing, under-reported), crashes inside a tool and
    resumes, with and without approval, through no store, SQLite and Redis: the fake server's own count of
    what it served never exceeds a run cap or the account's cap. (Under-reports are drawn at up to 30% of the
    truth: a report between our floor, 8 bytes a token, and the truth cannot be told from an honest one
    without the server's tokenizer; the fake counts 4 to 5 bytes a token, as real tokenizers do.)"""
    store: Any = None
    if where == "sqlite":
        store = SQLiteBudgetStore(tmp_path / f"{uuid.uuid4().hex}.db")
    elif where == "redis":
        store = RedisBudgetStore(redis_url, prefix=f"p{uuid.uuid4().hex[:8]}")
    account = (
        None
        if store is None
        else store.account("user:x", ",".join(f"{k}={v}" for k, v in account_caps.items()), window="day")
    )
    budget = ",".join(f"{k}={v}" for k, v in caps.items()) or "none"

    class Crash(BaseException):
        pass

    ran: Counter[str] = Counter()
    crashes = {"left": 1 if crash else 0}

    @tool(name="search")
    def crashing_search(queries: list[str]) -> str:
        """Search."""
        ran["search"] += 1
        if crashes["left"]:
            crashes["left"] -= 1
            raise Crash()
        return "Paris is the capital of France."

    runs = served_all = 0
    overran = False  # a report above the reservation is committed as reported and stops the run (loudly)
    for kind in kinds:
        with FakeOpenAI("normal", lie=_lie(kind, scale)) as server:
            saver = InMemorySaver()
            agent = Agent(
                fake_model(server),
                [crashing_search],
                budget,
                planner="react",
                prices=PRICES,
                max_tokens=120,
                max_turns=6,
                checkpointer=saver,
                approve=["search"] if approve else False,
            )
            tid = f"t{runs}"
            try:
                result = agent.run("capital of France?", thread_id=tid, account=account)
                while result.stop_reason.kind == "interrupted":
                    result = asyncio.run(agent.aresume(tid, decisions="approve"))
            except Crash:
                result = asyncio.run(agent.aresume(tid))
                while result.stop_reason.kind == "interrupted":
                    result = asyncio.run(agent.aresume(tid, decisions="approve"))
            TALLY["runs"] += 1
            TALLY[f"lie:{kind}"] += 1
            TALLY[f"store:{where}"] += 1
            TALLY[f"stop:{result.stop_reason.kind}"] += 1
            TALLY["crash"] += crash
            TALLY["approve"] += approve
            prompt, completion = served(server)
            overran = overran or (
                result.stop_reason.kind == "overrun" and result.stop_reason.resource != "usage"
            )
            runs += 1
            limits = Budget.parse(budget, ["search"]).limits()
            if "total_tokens" in limits:
                assert prompt + completion <= limits["total_tokens"], (kind, prompt + completion)
            if "llm_calls" in limits:
                assert server.calls <= limits["llm_calls"], (kind, server.calls)
            served_all += prompt + completion
            if account is not None:
                spent = account.usage().spent
                assert all(v >= 0 for v in spent.values())
                assert served_all <= int(spent.get("total_tokens", 0)), (kind, served_all, spent)
    if account is not None:
        usage = account.usage()
        assert served_all <= account.limits["total_tokens"]  # the ground truth within the account's cap
        for key, cap in account.limits.items():
            assert usage.spent.get(key, 0) <= cap or overran, (key, usage.spent, cap)
    if "search" in caps:
        assert ran["search"] <= caps["search"] * len(kinds)


def test_windows_come_from_the_stores_clock_not_the_hosts(store: Any, monkeypatch: Any) -> None:
    """store_lease_window.py (3): a host whose clock is 61 s behind shares the minute window with the others."""
    from datetime import datetime, timedelta

    import budgetgraph.budget.store as store_mod

    account = store.account(f"user:{uuid.uuid4().hex}", "tools=3", window="minute")
    got = sum(1 for _ in range(5) if not isinstance(account.try_reserve({"tool_calls": 1}), Exception))
    real = store_mod.datetime

    class Skewed(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return real.now(tz) - timedelta(seconds=61)

    monkeypatch.setattr(store_mod, "datetime", Skewed)
    skewed = sum(1 for _ in range(5) if not isinstance(account.try_reserve({"tool_calls": 1}), Exception))
    assert got + skewed <= 3


def test_the_hostile_backend_property_exercised_every_kind(capsys: Any) -> None:
    """The property above ran every lie, store, crash and approval (printed with -s for the record)."""
    if not TALLY:
        pytest.skip("the property test did not run in this session")
    with capsys.disabled():
        print("\nhostile-backend property:", dict(sorted(TALLY.items())))
    kinds = ("honest", "none", "negative", "nan", "zero", "huge", "missing", "under")
    assert all(TALLY[f"lie:{k}"] for k in kinds) and TALLY["crash"] and TALLY["approve"]
    assert all(TALLY[f"store:{w}"] for w in ("none", "sqlite", "redis"))
