"""The orchestrator: knapsack-chosen sub-agents under child ledgers whose spend adds up in the parent."""

from __future__ import annotations

import asyncio

import pytest

from budgetgraph import Budget
from budgetgraph.agents.orchestrator import Orchestrator, SubAgent
from budgetgraph.budget.ledger import Ledger
from budgetgraph.errors import ConfigError
from budgetgraph.models import ScriptedModel


def _boss(subs):
    def policy(messages, tools):
        prompt = messages[-1].content
        if prompt.startswith("Split the task"):
            return ScriptedModel.text(str(subs).replace("'", '"'))
        return ScriptedModel.text("<answer>" + prompt.split("-> ")[-1].split("\n")[0] + "</answer>")

    return ScriptedModel(policy, name="boss")


def test_ledger_tree_adds_up_and_no_child_overspends(mini_corpus):
    tools = mini_corpus.tools()
    worker = ScriptedModel.qa_policy()
    team = [
        SubAgent(
            "researcher",
            "search and read documents to find facts",
            tools=tools,
            model=worker,
            cost=1,
            value=2,
        ),
        SubAgent("poet", "write poems about the sea", model=worker, cost=5, value=1),
    ]
    budget = Budget(tool_calls={"search": 3, "open": 3}, total_tool_calls=5, llm_calls=12)
    orch = Orchestrator(
        _boss(["Who designed the Apple Remote?", "What does the Apple Remote control?"]), team, budget
    )
    result = asyncio.run(orch.arun("Who designed the Apple Remote and what does it control?"))
    assert [d.sub_agent for d in orch.delegations] == ["researcher", "researcher"]  # the poet does not fit
    children = [d.result for d in orch.delegations]
    assert result.usage.tool_calls == {
        "search": sum(c.usage.tool_calls.get("search", 0) for c in children),
        "open": sum(c.usage.tool_calls.get("open", 0) for c in children),
    }
    assert result.usage.llm_calls == 2 + sum(c.usage.llm_calls for c in children)
    assert result.usage.usd == sum(c.usage.usd for c in children)  # the boss is free, tools cost $0.001
    for d in orch.delegations:  # each child stayed inside the share it was given
        limits, spent = d.result.ledger["limits"], d.result.ledger["spent"]
        assert limits and all(float(spent.get(k, 0)) <= float(v) for k, v in limits.items()), d
    assert result.usage.total_tool_calls <= 5 and result.answer


def test_child_ledgers_cannot_overspend_the_parent():
    parent = Ledger(Budget(total_tool_calls=3))
    child = parent.child(Budget(total_tool_calls=10))
    held = [child.try_reserve({"tool_calls": 1}) for _ in range(5)]
    assert sum(not hasattr(h, "resource") for h in held) == 3
    for h in held:
        if not hasattr(h, "resource"):
            child.commit(h)
    assert parent.spent("tool_calls") == 3 == child.spent("tool_calls")


def test_orchestrator_needs_a_team():
    with pytest.raises(ConfigError, match="at least one SubAgent"):
        Orchestrator("scripted", [], None)
