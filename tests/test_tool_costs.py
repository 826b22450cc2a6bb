"""Costs that tools report: a call reserves its price (the bound) and is charged what the paid API billed;
a report above the bound, negative or not a number is an overrun that stops the run."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from budgetgraph import Agent, ScriptedModel, ToolOverrun
from budgetgraph.agents import BudgetOverrun, FinalAnswer, ToolCallFinished
from budgetgraph.tools import Tool, Used


def _agent(billed: list, budget: str = "lookup=3,usd=1") -> Agent:
    def lookup(key: str) -> Used:
        """Look a key up in a paid API."""
        return Used(f"value of {key}", cost=billed.pop(0))

    def reply(messages, tools):
        done = sum(m.role == "tool" for m in messages)
        if done >= 2 or not tools:
            return ScriptedModel.text(f"<answer>{done} lookups</answer>")
        return ScriptedModel.tool_calls([("lookup", {"key": f"k{done}"})])

    return Agent(ScriptedModel(reply), [Tool(lookup, price="0.01")], budget, planner="react")  # a free model


def test_a_billed_cost_under_the_bound_is_charged_exactly():
    result = _agent(["0.004", Decimal("0.0025")]).run("q")
    assert result.stop_reason.kind == "answered" and result.usage.tool_calls == {"lookup": 2}
    assert result.usage.usd == Decimal("0.0065")  # not the 0.02 the two calls reserved
    commits = [e for e in result.timeline if e["event"] == "commit" and "tool:lookup" in e["amounts"]]
    assert [e["amounts"]["usd"] for e in commits] == ["0.004", "0.0025"]


def test_a_billed_cost_above_the_bound_stops_the_run_with_overrun_and_charges_the_truth():
    agent = _agent(["0.003", "0.05"])

    async def go():
        return [e async for e in agent.astream("q")]

    events = asyncio.run(go())
    result = events[-1].result
    assert isinstance(events[-1], FinalAnswer)
    assert result.stop_reason.kind == "overrun" and result.stop_reason.resource == "usd"
    assert "the tool lookup" in result.stop_reason.message and "0.05" in result.stop_reason.message
    assert result.usage.usd == Decimal("0.053") and result.usage.tool_calls == {"lookup": 2}
    (overrun,) = [e for e in events if isinstance(e, BudgetOverrun)]
    assert (overrun.resource, overrun.reserved, overrun.reported, overrun.model) == (
        "usd",
        "0.01",
        "0.05",
        "tool lookup",
    )
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert [e.cost for e in finished] == [0.003, 0.05]


@pytest.mark.parametrize("lie", [-0.001, "NaN", "Infinity", "a lot", True, "1e30"])
def test_a_cost_that_cannot_be_true_is_charged_its_bound_and_stops_the_run(lie):
    result = _agent([lie]).run("q")
    assert result.stop_reason.kind == "overrun" and "cannot" not in result.stop_reason.message
    assert result.usage.usd == Decimal("0.01") and result.usage.tool_calls == {"lookup": 1}


def test_the_bound_is_what_a_dollar_cap_admits():
    # the bound (0.01) does not fit 0.009 dollars, however little the call would have been billed
    result = _agent(["0.001"], budget="lookup=3,usd=0.009").run("q")
    assert result.usage.tool_calls == {} and result.usage.usd == 0
    refused = [m.content for m in result.messages if m.role == "tool" and "not run" in m.content]
    assert refused and "Budget exhausted for usd" in refused[0]


def test_tool_overrun_is_exported_and_an_overrun():
    from budgetgraph import Overrun

    assert issubclass(ToolOverrun, Overrun)


@pytest.mark.parametrize(("report", "charged"), [("0.0999", "0.0999"), ("0.11", "0.01")])
def test_a_report_beyond_ten_times_its_bound_is_a_lie_charged_at_the_bound(report, charged):
    result = _agent([report], budget="lookup=3,usd=5").run("q")  # 9.99x its bound is believed, 11x is not
    assert result.stop_reason.kind == "overrun" and result.usage.tool_calls == {"lookup": 1}
    assert result.usage.usd == Decimal(charged)


def test_with_no_dollar_cap_a_report_above_the_bound_is_charged_and_the_run_goes_on():
    result = _agent(["0.02", "9007199.25"], budget="lookup=3").run("q")
    assert result.stop_reason.kind == "answered" and result.usage.tool_calls == {"lookup": 2}
    # the truth of the credible one, the bound of the absurd one: nothing capped was overrun
    assert result.usage.usd == Decimal("0.03")


def test_an_absurd_report_cannot_lock_a_shared_account(tmp_path):
    from budgetgraph import SQLiteBudgetStore

    store = SQLiteBudgetStore(tmp_path / "a.db")
    account = store.account("user:ann", "lookup=10", window="day")  # the account caps no dollars
    first = _agent(["9007199.25", "0.001"], budget="lookup=3").run("q", account=account)
    assert first.stop_reason.kind == "answered"
    assert store.usage("user:ann", window="day").spent["usd"] == Decimal("0.011")
