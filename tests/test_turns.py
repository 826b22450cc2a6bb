"""Turn control: the cap from a percentile of the model's turns, the reminder on every turn, the stop at the
cap, and dynamic extensions that are journaled budget grants."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import pytest

from budgetgraph import Agent, AgentOptions
from budgetgraph.agents.events import BudgetGrant
from budgetgraph.agents.planners import parse_planner
from budgetgraph.agents.turns import baseline_turns, percentile, turn_control
from budgetgraph.budget.ledger import Ledger
from budgetgraph.budget.limits import Budget
from budgetgraph.errors import ConfigError
from budgetgraph.models.messages import Message, ToolSchema
from budgetgraph.models.scripted import ScriptedModel
from budgetgraph.tools.base import tool


@tool
def probe(x: int) -> str:
    """Look at x.

    Args:
        x: a number
    """
    return f"probed {x}"


def looping(ask_more: bool = False, answer_after: int | None = None):
    """A model that calls the tool every turn (asks for more turns when told the cap is reached)."""
    prompts: list[list[Message]] = []

    def script(messages: Sequence[Message], tools: Sequence[ToolSchema]) -> Message:
        prompts.append(list(messages))
        if not tools:  # the extension question or the final-answer request
            if "<more_turns>" in messages[-1].content and ask_more:
                return ScriptedModel.text("<more_turns>the tests still fail</more_turns>")
            return ScriptedModel.text("<answer>done</answer>")
        turns = sum(1 for m in messages if m.role == "assistant" and m.tool_calls)
        if answer_after is not None and turns >= answer_after:
            return ScriptedModel.text("<answer>finished</answer>")
        return ScriptedModel.tool_calls([("probe", {"x": turns})])

    return script, prompts


def test_percentiles_and_specs() -> None:
    turns = [1, 2, 2, 3, 4, 5, 6, 8, 9, 12]
    assert [percentile(turns, q) for q in (25, 50, 75, 90)] == [2, 4, 8, 9]
    assert turn_control("p75", turns).cap == 8
    assert turn_control(3).cap == 3 and not turn_control(3).dynamic
    dyn = turn_control("dynamic", turns)
    assert (dyn.cap, dyn.ceiling, dyn.step, dyn.dynamic) == (2, 9, 3, True)
    assert dyn.extension(2) == 3 and dyn.extension(8) == 1 and dyn.extension(9) == 0
    with pytest.raises(ConfigError, match="baseline"):
        turn_control("p50", [])
    with pytest.raises(ConfigError, match="expected a number"):
        turn_control("seventy", turns)


def test_a_fixed_cap_stops_the_loop_and_every_turn_carries_the_reminder() -> None:
    script, prompts = looping()
    agent = Agent(
        ScriptedModel(script), [probe], "probe=20", planner="react", options=AgentOptions(turn_cap=3)
    )
    result = agent.run("go")
    acting = [p for p in prompts if any(m.role == "tool" for m in p) or len(p) == 2]
    assert result.usage.tool_calls == {"probe": 3}
    assert str(result.stop_reason) == "budget_exhausted: turns"
    assert result.answer == "done"  # the final answer after the cap (not a turn)
    reminders = [p[-1].content.rsplit("\n", 1)[-1] for p in prompts[:3]]
    assert reminders == [
        f"ENVIRONMENT REMINDER: You have {n} turns left to complete the task." for n in (3, 2, 1)
    ]
    assert not any("ENVIRONMENT REMINDER" in m.content for m in result.messages)  # not kept in history
    assert acting


def test_dynamic_turns_are_granted_on_request_up_to_the_ceiling() -> None:
    script, prompts = looping(ask_more=True)
    tc = turn_control("dynamic:p25:p90", [2, 2, 3, 4, 6, 6, 7, 9])  # start 2, ceiling 9, step 4
    assert (tc.cap, tc.ceiling, tc.step) == (2, 9, 4)
    agent = Agent(
        ScriptedModel(script), [probe], "probe=20", planner="react", options=AgentOptions(turn_cap=tc)
    )
    events = asyncio.run(_events(agent))
    result = events[-1].result
    grants = [e for e in events if isinstance(e, BudgetGrant)]
    assert [(g.amount, g.limit) for g in grants] == [(4, 6), (3, 9)]
    assert all(g.by == "turn_control" and g.reason == "the tests still fail" for g in grants)
    assert result.usage.tool_calls == {"probe": 9}
    journal = [e for e in result.timeline if e["event"] == "grant"]
    assert [(e["amounts"], e["limit"]) for e in journal] == [({"turns": 4}, 6), ({"turns": 3}, 9)]
    assert result.ledger["limits"]["turns"] == 9
    # the extension questions are model calls of their own role, charged, but not turns; at the ceiling
    # the agent is not asked again
    assert result.usage.by_role["extend"]["llm_calls"] == 2
    assert result.ledger["spent"]["turns"] == 9


def test_an_agent_that_does_not_ask_is_not_extended() -> None:
    script, _ = looping(ask_more=False)
    agent = Agent(
        ScriptedModel(script),
        [probe],
        "probe=20",
        planner="react",
        options=AgentOptions(turn_cap="dynamic:p25:p90", turn_baseline=[2, 2, 3, 4, 6, 6, 7, 9]),
    )
    result = agent.run("go")
    assert result.usage.tool_calls == {"probe": 2} and result.answer == "done"
    assert not [e for e in result.timeline if e["event"] == "grant"]


def test_an_answer_before_the_cap_ends_the_run() -> None:
    script, _ = looping(answer_after=2)
    result = Agent(
        ScriptedModel(script), [probe], "probe=20", planner="tracker", options=AgentOptions(turn_cap=5)
    ).run("go")
    assert result.answer == "finished" and result.usage.tool_calls == {"probe": 2}


def test_grants_are_checked_and_persist_in_the_snapshot() -> None:
    ledger = Ledger(Budget(turns=2))
    with pytest.raises(ConfigError, match="positive"):
        ledger.grant("turns", 0, by="me")
    with pytest.raises(ConfigError, match="does not cap"):
        ledger.grant("usd", 1, by="me")
    assert ledger.grant("turns", 3, by="me", reason="why") == 5
    again = Ledger.from_snapshot(json.loads(json.dumps(ledger.snapshot())))
    assert again.limits["turns"] == 5
    with pytest.raises(ConfigError, match="once"):
        Agent(ScriptedModel([]), [probe], Budget(turns=3), options=AgentOptions(turn_cap=2))


def test_the_baseline_comes_from_a_results_file_and_labels_carry_options(tmp_path) -> None:
    path = tmp_path / "base.jsonl"
    rows = [{"type": "header"}]
    for planner, budget, turns in [
        ("react", "5", 2),
        ("react", "5", 4),
        ("react", "1", 9),
        ("tracker", "5", 7),
    ]:
        rows.append(
            {
                "type": "episode",
                "planner": planner,
                "budget": budget,
                "error": None,
                "usage": {"by_role": {"act": {"llm_calls": turns}}},
            }
        )
    path.write_text("\n".join(json.dumps(r) for r in rows))
    assert baseline_turns(path, "react", "5") == [2, 4]
    assert sorted(baseline_turns(path, "react")) == [2, 4, 9]
    name, options = parse_planner(f"react[turn_cap=p50;baseline={path};baseline_budget=5]")
    assert name == "react" and options == {"turn_cap": "p50", "turn_baseline": [2, 4]}
    assert parse_planner("tracker") == ("tracker", {})
    with pytest.raises(ConfigError, match="not one of"):
        parse_planner("react[cap=3]")
    with pytest.raises(ConfigError, match="no episodes"):
        baseline_turns(path, "bats")


async def _events(agent: Agent) -> list:
    return [e async for e in agent.astream("go")]
