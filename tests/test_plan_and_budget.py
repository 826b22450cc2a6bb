"""Plan-and-budget control flow with a scripted model: the allocation schedules, sub-questions funded by credit
x schedule, and exact per-role accounting."""

from __future__ import annotations

import asyncio

import pytest
from conftest import check_ledger

from budgetgraph import Agent, Budget
from budgetgraph.models import ScriptedModel
from budgetgraph.planners.allocation import allocate


@pytest.mark.parametrize("schedule", ["constant", "linear", "polynomial", "exponential", "cosine"])
def test_allocation_sums_exactly_and_favours_early_steps(schedule):
    shares = allocate(10, [40, 30, 30], schedule)
    assert sum(shares) == 10 and all(s >= 0 for s in shares)
    if schedule != "constant":
        assert shares[0] >= shares[-1]


def test_plan_and_budget_splits_by_credit_and_totals_add_up(mini_corpus):
    def policy(messages, tools):
        names = [t.name for t in tools]
        if names == ["submit_subquestions"]:
            return ScriptedModel.tool_calls(
                [
                    (
                        "submit_subquestions",
                        {
                            "subquestions": [
                                {"question": "Apple Remote designer", "credit": 70},
                                {"question": "Who is #1", "credit": 30},
                            ]
                        },
                    )
                ]
            )
        return ScriptedModel.qa_policy()._fn(messages, tools)

    model = ScriptedModel(policy)
    budget = Budget(tool_calls={"search": 4, "open": 4})
    agent = Agent(model, mini_corpus.tools(), budget, planner="plan_and_budget", instructions="HOUSE-RULE")
    result = asyncio.run(agent.arun("Who designed the Apple Remote?"))
    assert result.answer and set(result.usage.by_role) >= {"plan", "act", "answer"}
    acting = [msgs for msgs, tools, _ in model.requests if "search" in [t.name for t in tools]]
    assert acting and all("HOUSE-RULE" in msgs[0].content for msgs in acting)  # the sub-agents' prompts too
    assert sum(result.usage.tool_calls.values()) <= 8
    check_ledger(result)


def test_repeated_subquestions_merge_and_a_small_budget_keeps_few(mini_corpus):
    from budgetgraph.planners.allocation import SubQuestion, fit_subquestions

    same = "What device controls Front Row?"
    subs = [
        SubQuestion(question=same, credit=40),
        SubQuestion(question=" what device controls front row ", credit=30),
    ]
    subs.append(SubQuestion(question="Who made #1?", credit=30))
    assert [(s.question, s.credit) for s in fit_subquestions(subs, None)] == [
        (same, 70),
        ("Who made #1?", 30),
    ]
    assert [s.question for s in fit_subquestions(subs, 1)] == [same]
    assert len(fit_subquestions(subs, 0)) == 1  # one sub-question always runs

    def policy(messages, tools):
        if [t.name for t in tools] == ["submit_subquestions"]:
            listed = [{"question": f"Sub {i}?", "credit": 20} for i in range(5)]
            return ScriptedModel.tool_calls([("submit_subquestions", {"subquestions": listed})])
        return ScriptedModel.qa_policy()._fn(messages, tools)

    agent = Agent(
        ScriptedModel(policy),
        mini_corpus.tools(),
        Budget(tool_calls={"search": 2, "open": 3}),
        planner="plan_and_budget",
    )
    result = asyncio.run(agent.arun("Who designed the Apple Remote?"))
    asked = [m.content for m in result.messages if m.role == "user" and m.content.startswith("Sub ")]
    assert asked == ["Sub 0?", "Sub 1?"]  # two search calls: two sub-questions, not five
    check_ledger(result)
