"""Shows: a pytest test of your own agent with ScriptedModel (control flow and caps, no model download).

python -m pytest examples/test_my_agent.py
"""

from __future__ import annotations

from budgetgraph import Agent, Budget, ScriptedModel, tool


@tool(price="0.01")
def lookup(city: str) -> str:
    """The country a city is in."""
    return {"paris": "France", "kyoto": "Japan"}.get(city.lower(), "unknown")


def script(messages, tools):
    """Call lookup for two cities in one turn, then answer from the results."""
    if not any(m.role == "tool" for m in messages):
        return ScriptedModel.tool_calls([("lookup", {"city": "Paris"}), ("lookup", {"city": "Kyoto"})])
    found = [m.content.split("\n")[0] for m in messages if m.role == "tool"]
    return ScriptedModel.text(f"<answer>{', '.join(found)}</answer>")


def test_the_agent_answers_from_its_tool_and_stays_in_budget():
    agent = Agent(
        ScriptedModel(script), [lookup], Budget(tool_calls={"lookup": 1}, usd="0.05"), planner="react"
    )
    result = agent.run("Which countries are Paris and Kyoto in?")
    assert result.usage.tool_calls == {"lookup": 1}  # the second call did not fit
    refused = [m for m in result.messages if m.role == "tool" and "Budget exhausted" in m.content]
    assert len(refused) == 1 and "France" in (result.answer or "")
    assert result.usage.usd <= 0.05
