"""The loop as a small core plus hooks: a hook's points, its typed jumps and owned state, a fresh instance per
run; budgets per run; one compiled graph per planner in a sweep."""

from __future__ import annotations

import asyncio

import pytest
from conftest import MINI
from langgraph.graph.state import StateGraph

from budgetgraph import Agent, ConfigError, ScriptedModel, tool
from budgetgraph.agents import Hook, Jump, LoopSettings, Reply, ToolsDone, Turn, loop_graph
from budgetgraph.envs import EvalSpec, run_eval

CALLS: list[str] = []


@tool
def lookup(query: str) -> str:
    """Look a fact up."""
    CALLS.append(query)
    return f"facts about {query}"


def keeps_looking(messages, tools):
    if not tools or (messages[-1].role == "user" and "No more tool calls" in messages[-1].content):
        return ScriptedModel.text("<answer>done</answer>")
    return ScriptedModel.tool_calls([("lookup", {"query": f"q{sum(m.role == 'tool' for m in messages)}"})])


def test_a_run_takes_its_own_budget_and_the_agents_is_the_default():
    agent = Agent(ScriptedModel(keeps_looking), [lookup], "lookup=3", planner="react")
    assert agent.run("q").usage.tool_calls == {"lookup": 3}
    one = asyncio.run(agent.arun("q", budget="lookup=1"))
    assert one.usage.tool_calls == {"lookup": 1} and one.ledger["limits"] == {"tool:lookup": 1}
    assert agent.run("q").usage.tool_calls == {"lookup": 3}  # the agent's own again
    with pytest.raises(ConfigError, match="names no tool"):
        asyncio.run(agent.arun("q", budget="lokup=1"))


def test_a_sweep_of_three_budgets_compiles_one_graph_per_planner(tmp_path, monkeypatch):
    compiled: list[int] = []
    original = StateGraph.compile

    def counting(self, *args, **kwargs):
        compiled.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(StateGraph, "compile", counting)
    monkeypatch.setenv("BUDGETGRAPH_CACHE", str(tmp_path / "cache"))
    spec = EvalSpec(
        env="hotpotqa",
        env_options={"data": str(MINI)},
        model="scripted",
        planners=("react", "tracker"),
        budgets=("1", "2", "3"),
        limit=2,
    )
    summary = asyncio.run(run_eval(spec, tmp_path / "r.jsonl", progress=False))
    assert summary.ran == 12 and summary.errors == 0 and len(compiled) == 2


class Counting(Hook):
    """Counts tool turns in a state key it owns, and stops after two."""

    state = {"tool_turns": int}

    def __init__(self) -> None:
        self.instances = 0

    def for_run(self) -> Hook:
        fresh = Counting()
        fresh.instances = self.instances + 1
        return fresh

    async def after_tools(self, turn: Turn, done: ToolsDone) -> Jump | None:
        seen = int(turn.state.get("tool_turns", 0)) + 1
        turn.set("tool_turns", seen)
        done.append(f"\n[turn {seen}, instance {self.instances}]")
        return Jump.to_answer("stopped_early", "two tool turns are enough") if seen >= 2 else None


def _settings(**kw) -> LoopSettings:
    return LoopSettings(
        model=ScriptedModel(keeps_looking), tools={"lookup": lookup}, system_prompt="Be brief.", **kw
    )


def test_a_hook_owns_its_state_sees_the_results_and_jumps_with_a_typed_stop():
    graph = loop_graph(_settings(), [Counting()]).compile()
    from budgetgraph import Message

    final = asyncio.run(graph.ainvoke({"messages": [Message.user("q")]}))
    assert final["tool_turns"] == 2 and final["stop"]["kind"] == "stopped_early"
    results = [m.content for m in final["messages"] if m.role == "tool"]
    assert results[0].endswith("[turn 1, instance 1]") and results[1].endswith("[turn 2, instance 1]")
    assert final["answer"] == "done"  # the jump went to the final answer, on the held reserve


class Trespasser(Hook):
    async def after_model(self, turn: Turn, reply: Reply) -> Jump | None:
        turn.set("answer", "forged")
        return None


def test_a_hook_cannot_write_a_key_it_does_not_own():
    graph = loop_graph(_settings(), [Trespasser()]).compile()
    from budgetgraph import Message

    with pytest.raises(ConfigError, match="writes state key 'answer', which it does not declare"):
        asyncio.run(graph.ainvoke({"messages": [Message.user("q")]}))


def test_each_run_gets_a_fresh_hook_instance():
    made: list[Hook] = []

    class Remember(Hook):
        def for_run(self) -> Hook:
            fresh = Remember()
            made.append(fresh)
            return fresh

        async def before_model(self, turn: Turn) -> Jump | None:
            return None

    from budgetgraph import Message

    graph = loop_graph(
        _settings(budget=__import__("budgetgraph").Budget(tool_calls={"lookup": 1})), [Remember()]
    )
    compiled = graph.compile()
    for _ in range(3):
        asyncio.run(compiled.ainvoke({"messages": [Message.user("q")]}))
    assert len(made) == 3 and len({id(h) for h in made}) == 3


def test_a_stop_kind_that_is_not_one_is_an_error():
    from budgetgraph.agents import StopReason

    with pytest.raises(ValueError, match="stop kind 'gave_up' is not one of"):
        StopReason.of({"kind": "gave_up"})
    with pytest.raises(ValueError):
        Jump.to_answer("gave_up")  # type: ignore[arg-type]
