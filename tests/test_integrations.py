"""budgetgraph's ledger inside a LangChain ``create_agent`` agent (middleware) and a pydantic-ai ``Agent``
(capability): the real frameworks with their own kind of fake chat model, parallel calls, batched units, a
lying usage report, a checkpointed resume, an account shared by two processes, and the same scripted agent
built three ways charged the same."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from budgetgraph import Agent, ModelPrice, PriceTable, ScriptedModel, tool
from budgetgraph.errors import PriceError
from budgetgraph.models.messages import Message, ToolCall
from tests.hosts import Log, langchain_model, pydantic_ai_model, search_policy

pytest.importorskip("langchain.agents", reason="the [langchain] extra is not installed (Python 3.11+)")
pytest.importorskip("pydantic_ai", reason="the [pydantic-ai] extra is not installed (Python 3.11+)")

from langchain.agents import create_agent  # noqa: E402
from langchain_core.messages import ToolMessage  # noqa: E402
from langchain_core.tools import tool as lc_tool  # noqa: E402
from pydantic_ai import Agent as PAgent  # noqa: E402

from budgetgraph.integrations.langchain import BudgetMiddleware, ChargedTool  # noqa: E402
from budgetgraph.integrations.pydantic_ai import BudgetCapability  # noqa: E402

BUDGET = "search=3,tokens=4000"
SEARCH = {"search": ChargedTool(units="queries")}


def _lc_search(ran: list[list[str]]) -> Any:
    @lc_tool
    def search(queries: list[str]) -> str:
        """Search the web with a batch of keyword queries."""
        ran.append(list(queries))
        return "results for " + ", ".join(queries)

    return search


def _lc_run(
    budget: str, log: Log, ran: list[list[str]], **options: Any
) -> tuple[dict[str, Any], BudgetMiddleware]:
    lie = options.pop("lie", None)
    middleware = BudgetMiddleware(budget, tools=SEARCH, **options)
    agent = create_agent(langchain_model(search_policy, log, lie), [_lc_search(ran)], middleware=[middleware])
    return asyncio.run(agent.ainvoke({"messages": [("user", "find it")]})), middleware


def _pa_agent(
    budget: str, log: Log, ran: list[list[str]], **options: Any
) -> tuple[PAgent[None, str], BudgetCapability]:
    lie = options.pop("lie", None)
    capability = BudgetCapability(budget, tools=SEARCH, **options)
    agent = PAgent(pydantic_ai_model(search_policy, log, lie), capabilities=[capability])

    @agent.tool_plain
    def search(queries: list[str]) -> str:
        """Search the web with a batch of keyword queries."""
        ran.append(list(queries))
        return "results for " + ", ".join(queries)

    return agent, capability


def _ours(ran: list[list[str]]) -> Any:
    @tool(units="queries")
    def search(queries: list[str]) -> str:
        """Search the web with a batch of keyword queries."""
        ran.append(list(queries))
        return "results for " + ", ".join(queries)

    steps = {"n": 0}

    def reply(messages: Any, tools: Any) -> Message:
        text, calls = search_policy(steps["n"], [t.name for t in tools])
        steps["n"] += 1
        return Message.assistant(text, [ToolCall(f"c{i}", n, a) for i, (n, a) in enumerate(calls)])

    return Agent(ScriptedModel(reply), [search], BUDGET, planner="react")


# -- LangChain -------------------------------------------------------------------------------------------
def test_langchain_middleware_caps_a_parallel_batch_by_units_and_answers_on_the_reserve():
    log, ran = Log(), []
    state, _ = _lc_run(BUDGET, log, ran, show_budget=True)
    assert ran == [
        ["a", "b"],
        ["c"],
    ]  # the batch that did not fit ran its first query; the parallel call none
    tools = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert tools[1].content.startswith("[Budget: only the first 1 of 2 queries were run")
    assert tools[2].status == "error" and "This call was not run" in tools[2].content
    assert all("<budget>" in t.content for t in tools)
    spent = state["budgetgraph_ledger"]["spent"]
    assert spent["tool:search"] == 3 and spent["llm_calls"] == 3 == len(log.reported)
    assert (spent["input_tokens"], spent["output_tokens"]) == log.totals()  # what the model reported, exactly
    assert spent["total_tokens"] <= 4000
    assert log.offered == [["search"], ["search"], []]  # the final answer is asked for with no tools
    assert log.max_tokens == [1024, 1024, 512]  # each call's output bound is sent as max_tokens
    assert state["messages"][-1].content == "<answer>c</answer>"
    stop = state["budget_stop"]
    assert (stop["kind"], stop["resource"]) == ("budget_exhausted", "search")


def test_langchain_middleware_meters_a_synchronous_invoke_the_same():
    log, ran = Log(), []
    middleware = BudgetMiddleware(BUDGET, tools=SEARCH)
    agent = create_agent(langchain_model(search_policy, log), [_lc_search(ran)], middleware=[middleware])
    state = agent.invoke({"messages": [("user", "find it")]})  # parallel calls on LangGraph's worker threads
    # the pair runs on two threads: which of them is admitted first is the threads' order
    assert ran[0] == ["a", "b"] and ran[1] in (["c"], ["e"]) and sum(map(len, ran)) == 3
    assert state["budgetgraph_ledger"]["spent"]["tool:search"] == 3
    assert state["budget_stop"]["resource"] == "search" and log.max_tokens == [1024, 1024, 512]


def test_langchain_middleware_charges_a_lying_usage_report_at_its_bound_and_stops():
    log, ran = Log(), []
    state, _ = _lc_run(BUDGET, log, ran, lie=lambda step: (-5, 3) if step == 1 else None)
    spent = state["budgetgraph_ledger"]["spent"]
    assert state["budget_stop"]["kind"] == "overrun" and "input_tokens" in state["budget_stop"]["message"]
    assert spent["llm_calls"] == 2 and ran == [["a", "b"]]  # the lying call's tool calls are not run
    honest = log.reported[0]
    assert spent["input_tokens"] > honest[0] + 100  # the second call is charged its reservation
    assert spent["total_tokens"] <= 4000


def test_langchain_middleware_never_overshoots_a_tight_token_cap():
    for cap in (700, 1200, 1800, 2600):
        log, ran = Log(), []
        state, _ = _lc_run(f"search=9,tokens={cap}", log, ran, max_tokens=200, answer_max_tokens=100)
        spent = state["budgetgraph_ledger"]["spent"]
        assert spent["total_tokens"] <= cap, (cap, spent)
        assert (spent["input_tokens"], spent["output_tokens"]) == log.totals()
        assert state["budget_stop"]["resource"] in ("total_tokens", "search")


def test_langchain_middleware_cuts_a_slow_tool_at_the_seconds_cap():
    import time

    from langchain_core.tools import tool as make_tool

    @make_tool
    async def search(queries: list[str]) -> str:
        """Search the web."""
        await asyncio.sleep(5)
        return "late"

    middleware = BudgetMiddleware("search=5,seconds=1", tools=SEARCH)
    agent = create_agent(langchain_model(search_policy, Log()), [search], middleware=[middleware])
    started = time.monotonic()
    state = asyncio.run(agent.ainvoke({"messages": [("user", "find it")]}))
    assert time.monotonic() - started < 2.5  # not the 5 s the tool would take
    assert state["budget_stop"]["resource"] == "seconds"
    assert state["budgetgraph_ledger"]["seconds"] <= 1.0 + 0.2


def test_langchain_tool_price_and_reported_cost_under_a_dollar_cap():
    from langchain_core.tools import StructuredTool

    ran: list[list[str]] = []

    def fetch(queries: list[str]) -> tuple[str, dict[str, Any]]:
        ran.append(list(queries))
        return "page", {"cost": "0.002"}  # billed less than the 0.01 a query reserved

    tool_ = StructuredTool.from_function(
        fetch, name="search", description="Search.", response_format="content_and_artifact"
    )
    charged = {"search": ChargedTool(price="0.01", units="queries")}
    unpriced = create_agent(
        langchain_model(search_policy, Log()), [tool_], middleware=[BudgetMiddleware("usd=1", tools=charged)]
    )
    with pytest.raises(
        PriceError, match="no price is known for model 'Replay'"
    ):  # a dollar cap needs a price
        asyncio.run(unpriced.ainvoke({"messages": [("user", "find it")]}))
    assert ran == []
    free = PriceTable(models={"replay": ModelPrice.of(input=0, output=0)})
    middleware = BudgetMiddleware("usd=0.025", tools=charged, prices=free, model="replay")
    agent = create_agent(langchain_model(search_policy, Log()), [tool_], middleware=[middleware])
    state = asyncio.run(agent.ainvoke({"messages": [("user", "find it")]}))
    spent = state["budgetgraph_ledger"]["spent"]
    # 2 queries reserve 0.02 (fit), are billed 0.002; then 0.02 + 0.01 reserve: 0.002 + 0.02 fits, 0.01 does not
    assert Decimal(spent["usd"]) <= Decimal("0.025") and ran[0] == ["a", "b"]
    assert Decimal(spent["usd"]) == Decimal("0.002") * len(ran)


def test_langchain_checkpointed_thread_resumes_with_what_it_spent(tmp_path: Path):
    pytest.importorskip(
        "langgraph.checkpoint.sqlite", reason="needs the [app] extra (the SQLite checkpointer)"
    )
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async def go() -> tuple[list[list[str]], dict[str, Any]]:
        ran: list[list[str]] = []
        config = {"configurable": {"thread_id": "t1"}}
        async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "ck.db")) as saver:
            log = Log()
            first = create_agent(
                langchain_model(search_policy, log),
                [_lc_search(ran)],
                middleware=[BudgetMiddleware(BUDGET, tools=SEARCH)],
                checkpointer=saver,
                interrupt_before=["tools"],
            )
            await first.ainvoke({"messages": [("user", "find it")]}, config)
            await first.ainvoke(None, config)  # runs [a, b]; paused before the parallel pair
            assert ran == [["a", "b"]]
            # another process: a new middleware that never saw this run resumes it from the checkpoint
            second = create_agent(
                langchain_model(search_policy, log),
                [_lc_search(ran)],
                middleware=[BudgetMiddleware(BUDGET, tools=SEARCH)],
                checkpointer=saver,
            )
            state = await second.ainvoke(None, config)
            return ran, state

    ran, state = asyncio.run(go())
    assert ran == [["a", "b"], ["c"]]  # a ledger rebuilt at zero would have run [c, d] and [e] too
    assert state["budgetgraph_ledger"]["spent"]["tool:search"] == 3


def test_langchain_thread_budget_spans_invocations_but_not_the_time_between_them():
    import time

    from langgraph.checkpoint.memory import InMemorySaver

    def answer(step: int, offered: list[str]) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        return f"answer {step}", []

    log = Log()
    middleware = BudgetMiddleware("search=3,seconds=1,llm_calls=5", tools=SEARCH)
    agent = create_agent(
        langchain_model(answer, log), [_lc_search([])], middleware=[middleware], checkpointer=InMemorySaver()
    )
    config = {"configurable": {"thread_id": "t"}}
    agent.invoke({"messages": [("user", "one")]}, config)
    time.sleep(1.2)  # longer than the seconds cap, between two invocations
    state = agent.invoke({"messages": [("user", "two")]}, config)
    assert state["messages"][-1].content == "answer 1" and state.get("budget_stop") is None
    assert state["budgetgraph_ledger"]["spent"]["llm_calls"] == 2  # the thread's budget goes on


def test_an_sqlite_account_caps_two_processes_together(tmp_path: Path):
    worker = Path(__file__).with_name("integration_worker.py")
    db = tmp_path / "budget.db"
    procs = [
        subprocess.Popen(
            [sys.executable, str(worker), framework, str(db)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parent.parent,
        )
        for framework in ("langchain", "pydantic-ai")
    ]
    outs = [p.communicate(timeout=50) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    ran = [int(out.split()[-1]) for out, _ in outs]
    # each run alone may search 6 times; the account lets the two processes 5 searches in all
    assert sum(ran) == 5, ran


# -- pydantic-ai ---------------------------------------------------------------------------------------
def test_pydantic_ai_capability_caps_a_parallel_batch_by_units_and_answers_on_the_reserve():
    log, ran = Log(), []
    agent, capability = _pa_agent(BUDGET, log, ran, show_budget=True)
    result = agent.run_sync("find it")
    assert ran == [["a", "b"], ["c"]]
    returns = [p for m in result.all_messages() for p in m.parts if p.part_kind == "tool-return"]
    assert returns[1].content.startswith("[Budget: only the first 1 of 2 queries were run")
    assert "This call was not run" in returns[2].content and "<budget>" in returns[0].content
    spent = capability.spent(result.run_id)
    assert spent["tool:search"] == 3 and spent["llm_calls"] == 3 == len(log.reported)
    assert (spent["input_tokens"], spent["output_tokens"]) == log.totals()
    assert log.offered == [["search"], ["search"], []] and log.max_tokens == [1024, 1024, 512]
    assert result.output == "<answer>c</answer>"
    stop = capability.stop(result.run_id)
    assert stop is not None and (stop["kind"], stop["resource"]) == ("budget_exhausted", "search")


def test_pydantic_ai_capability_charges_a_lying_usage_report_at_its_bound_and_stops():
    log, ran = Log(), []
    agent, capability = _pa_agent(BUDGET, log, ran, lie=lambda step: (2, 1) if step == 1 else None)
    result = agent.run_sync("find it")
    stop = capability.stop(result.run_id)
    assert stop is not None and stop["kind"] == "overrun"
    spent = capability.spent(result.run_id)
    assert spent["llm_calls"] == 2 and ran == [["a", "b"]] and spent["total_tokens"] <= 4000
    assert spent["input_tokens"] > log.reported[0][0] + 100


def test_pydantic_ai_capability_never_overshoots_a_tight_token_cap():
    for cap in (700, 1200, 1800, 2600):
        log, ran = Log(), []
        agent, capability = _pa_agent(
            f"search=9,tokens={cap}", log, ran, max_tokens=200, answer_max_tokens=100
        )
        result = agent.run_sync("find it")
        spent = capability.spent(result.run_id)
        assert spent["total_tokens"] <= cap, (cap, spent)
        assert (spent["input_tokens"], spent["output_tokens"]) == log.totals()


def test_pydantic_ai_capability_cuts_a_slow_tool_at_the_seconds_cap():
    import time

    capability = BudgetCapability("search=5,seconds=1", tools=SEARCH)
    agent = PAgent(pydantic_ai_model(search_policy, Log()), capabilities=[capability])

    @agent.tool_plain
    async def search(queries: list[str]) -> str:
        """Search the web."""
        await asyncio.sleep(5)
        return "late"

    started = time.monotonic()
    result = agent.run_sync("find it")
    assert time.monotonic() - started < 2.5
    stop = capability.stop(result.run_id)
    assert stop is not None and stop["resource"] == "seconds"


def test_pydantic_ai_capability_keeps_runs_apart_and_a_conversation_together():
    log, ran = Log(), []
    agent, capability = _pa_agent("search=4", log, ran)
    first = agent.run_sync("find it")
    assert capability.spent(first.run_id)["tool:search"] == 4  # [a, b], then [c, d] with [e] refused
    again = agent.run_sync("find it")  # a new run: a new ledger, 4 more searches
    assert capability.spent(again.run_id)["tool:search"] == 4 and sum(map(len, ran)) == 8
    log2 = Log()
    agent2, shared = _pa_agent("search=4", log2, ran, scope="conversation")
    one = agent2.run_sync("find it", conversation_id="conv")
    assert shared.spent("conv")["tool:search"] == 4
    log2.reported.clear(), log2.offered.clear()
    two = agent2.run_sync("and again", conversation_id="conv", message_history=one.all_messages())
    assert (
        shared.spent("conv")["tool:search"] == 4 and log2.offered[0] == []
    )  # nothing left for the conversation
    assert two.output == "<answer>c</answer>"


# -- the same agent three ways -------------------------------------------------------------------------
def test_the_same_agent_built_three_ways_is_charged_the_same_and_stops_the_same():
    ran_ours: list[list[str]] = []
    result = _ours(ran_ours).run("find it")
    ran_lc: list[list[str]] = []
    state, _ = _lc_run(BUDGET, Log(), ran_lc)
    ran_pa: list[list[str]] = []
    agent, capability = _pa_agent(BUDGET, Log(), ran_pa)
    pa = agent.run_sync("find it")
    assert ran_ours == ran_lc == ran_pa == [["a", "b"], ["c"]]
    assert result.usage.tool_calls == {"search": 3}
    assert (
        state["budgetgraph_ledger"]["spent"]["tool:search"] == 3 == capability.spent(pa.run_id)["tool:search"]
    )
    ours = (result.stop_reason.kind, result.stop_reason.resource)
    lc_stop, pa_stop = state["budget_stop"], capability.stop(pa.run_id)
    assert pa_stop is not None
    assert ours == (lc_stop["kind"], lc_stop["resource"]) == (pa_stop["kind"], pa_stop["resource"])


def test_pydantic_ai_structured_output_and_typed_arguments_pass_through_uncharged():

    from pydantic import BaseModel
    from pydantic_ai import messages as pm
    from pydantic_ai.models.function import AgentInfo, FunctionModel
    from pydantic_ai.usage import RequestUsage

    class Found(BaseModel):
        title: str

    seen: list[Any] = []

    def reply(messages: list[pm.ModelMessage], info: AgentInfo) -> pm.ModelResponse:
        usage = RequestUsage(input_tokens=300, output_tokens=20)
        if info.function_tools:
            call = pm.ToolCallPart("lookup", {"days": ["2026-01-02", "2026-01-03", "2026-01-04"]}, "c1")
            return pm.ModelResponse(parts=[call], usage=usage)
        output = info.output_tools[0].name  # with no function tools left, the answer is the structured output
        return pm.ModelResponse(parts=[pm.ToolCallPart(output, {"title": "Ada"}, "c2")], usage=usage)

    budget = BudgetCapability("lookup=2,tool_calls=2", tools={"lookup": ChargedTool(units="days")})
    agent = PAgent(FunctionModel(reply), output_type=Found, capabilities=[budget])

    @agent.tool_plain
    def lookup(days: list[date]) -> str:
        """Look days up."""
        seen.append(days)
        return "ok"

    result = agent.run_sync("find it")
    assert result.output == Found(title="Ada")
    assert seen == [[date(2026, 1, 2), date(2026, 1, 3)]]  # validated dates, the batch cut to the 2 that fit
    spent = budget.spent(result.run_id)
    assert spent["tool:lookup"] == 2 and spent["tool_calls"] == 2  # the output tool is not a charged call
