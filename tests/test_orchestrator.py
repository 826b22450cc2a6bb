"""The orchestrator: knapsack-chosen sub-agents under child ledgers whose spend adds up in the parent."""

from __future__ import annotations

import asyncio

import pytest

from budgetgraph import Agent, Budget
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
        _boss(["Who designed the Apple Remote?", "What does the Apple Remote control?"]),
        team,
        budget,
        runner=Agent,
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


def test_one_child_share_rule_splits_what_is_left_exactly():
    from decimal import Decimal

    from budgetgraph import Budget, Ledger, tool
    from budgetgraph.agents.delegating import child_shares

    @tool
    def search(q: str) -> str:
        """Search."""
        return q

    ledger = Ledger(
        Budget(tool_calls={"search": 7, "open": 4}, usd=Decimal("0.010"), seconds=60.0, llm_calls=10)
    )
    ledger.set_hold({"llm_calls": 1, "usd": Decimal("0.001")})
    shares = child_shares(ledger, [1.0, 1.0], "constant")
    assert [s.tool_calls["search"] for s in shares] == [4, 3] and sum(s.llm_calls for s in shares) == 9
    assert sum(s.usd for s in shares) == Decimal("0.009")  # the answer hold stays with the parent
    assert all(s.seconds is None for s in shares)  # a child runs under its parent's clock, not a share of it
    (only,) = child_shares(ledger, [1.0], tools=[search])
    assert only.tool_calls == {"search": 7}  # a child gets only its own tools' caps
