"""A planner from outside the package: the docs example (docs/planners.md, run from the docs' own text)
registers, runs through Agent, astream, aresume and run_eval, and an entry point makes it known to the CLI."""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from budgetgraph import Agent, ConfigError, ScriptedModel, tool
from budgetgraph.agents import PLANNERS, AgentOptions, BATSOptions, FinalAnswer, register_planner
from budgetgraph.agents import registry as planner_registry
from budgetgraph.envs import EvalSpec, ResultsFile, run_eval

ROOT = Path(__file__).resolve().parents[1]
MINI = Path(__file__).resolve().parent / "data" / "multihop_mini.jsonl"
PACKAGE = ROOT / "budgetgraph"


def _example(name: str = "my_planners") -> str:
    """The ``NAME.py`` block of docs/planners.md, as written there."""
    text = (ROOT / "docs" / "planners.md").read_text(encoding="utf-8")
    blocks = re.findall(rf"```python\n(# {name}\.py\n.*?)```", text, re.DOTALL)
    assert len(blocks) == 1, f"docs/planners.md has one {name}.py example"
    return blocks[0]


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """The docs example as a module of its own, outside the package, imported (which registers it)."""
    where = tmp_path_factory.mktemp("plugin")
    (where / "my_planners.py").write_text(_example(), encoding="utf-8")
    sys.path.insert(0, str(where))
    try:
        module = importlib.import_module("my_planners")
        yield module, where
    finally:
        sys.path.remove(str(where))
        planner_registry._REGISTRY.pop("cheap_first", None)
        sys.modules.pop("my_planners", None)


@tool(price="0.001")
def lookup(query: str) -> str:
    """Look a fact up."""
    return "1. [Paris] the capital of France"


def _script(messages, tools):
    if not any(m.role == "tool" for m in messages):
        return ScriptedModel.tool_calls([("lookup", {"query": "capital of France"})])
    return ScriptedModel.text("<answer>Paris</answer>")


def test_the_example_lives_outside_the_package_and_registers(plugin):
    module, where = plugin
    assert not Path(module.__file__).resolve().is_relative_to(PACKAGE)
    spec = PLANNERS["cheap_first"]
    assert spec.options is module.CheapFirstOptions and spec.shows_budget and spec.takes_history
    assert "cheap_first" in planner_registry.planner_names()


def test_the_outside_planner_runs_through_agent_with_its_options(plugin):
    module, _ = plugin
    seen: list[str] = []

    def script(messages, tools):
        seen.append(messages[0].content)
        return _script(messages, tools)

    options = module.CheapFirstOptions(advice="Use lookup before anything else.")
    agent = Agent(ScriptedModel(script), [lookup], "lookup=2", planner="cheap_first", options=options)
    result = agent.run("What is the capital of France?")
    assert result.answer == "Paris" and result.stop_reason.kind == "answered"
    assert result.usage.tool_calls == {"lookup": 1}
    assert "Use lookup before anything else. Prices per call: lookup $0.001." in seen[0]
    assert "<budget>" in next(m.content for m in result.messages if m.role == "tool")  # it shows the budget
    with pytest.raises(ConfigError, match=r"takes CheapFirstOptions, not BATSOptions"):
        Agent(ScriptedModel(script), [lookup], planner="cheap_first", options=BATSOptions())
    with pytest.raises(ConfigError, match=r"options must be an AgentOptions \(e.g. CheapFirstOptions"):
        Agent(ScriptedModel(script), [lookup], planner="cheap_first", options={"advice": "x"})
    plain = Agent(ScriptedModel(script), [lookup], planner="cheap_first", options=AgentOptions(turn_cap=3))
    assert (
        isinstance(plain.options, module.CheapFirstOptions) and plain.budget.turns == 3
    )  # a plainer class carries over


def test_the_outside_planner_streams_and_resumes_after_an_approval(plugin):
    module, _ = plugin
    agent = Agent(
        ScriptedModel(_script),
        [lookup],
        "lookup=2",
        planner="cheap_first",
        options=module.CheapFirstOptions(),
        checkpointer=InMemorySaver(),
        approve=["lookup"],
    )

    async def go():
        events = [e async for e in agent.astream("What is the capital of France?", thread_id="t1")]
        return events, await agent.aresume("t1", decisions="approve")

    events, resumed = asyncio.run(go())
    (final,) = [e for e in events if isinstance(e, FinalAnswer)]
    assert final.result.stop_reason.kind == "interrupted" and [c.name for c in final.result.pending] == [
        "lookup"
    ]
    assert resumed.answer == "Paris" and resumed.usage.tool_calls == {"lookup": 1}


def test_the_outside_planner_sweeps_and_resumes_with_its_label_options(plugin, tmp_path, monkeypatch):
    monkeypatch.setenv("BUDGETGRAPH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "runs.jsonl"
    spec = EvalSpec(
        env="hotpotqa",
        env_options={"data": str(MINI)},
        model="scripted",
        planners=("cheap_first[advice=Search first.]",),
        budgets=("2",),
        limit=3,
    )
    first = asyncio.run(run_eval(spec, out, progress=False))
    assert (first.ran, first.errors) == (3, 0)
    _, records = ResultsFile(out).read()
    assert {r["planner"] for r in records} == {"cheap_first[advice=Search first.]"}
    assert all(r["stop_reason"] == "answered" and r["usage"]["tool_calls"] for r in records)
    again = asyncio.run(run_eval(spec, out, progress=False))
    assert (again.ran, again.skipped) == (0, 3)
    with pytest.raises(ConfigError, match="'advise=x' is not one of .*advice"):
        asyncio.run(
            run_eval(_spec_with(spec, "cheap_first[advise=x]"), tmp_path / "bad.jsonl", progress=False)
        )


def _spec_with(spec: EvalSpec, label: str) -> EvalSpec:
    from dataclasses import replace

    return replace(spec, planners=(label,))


def test_a_name_taken_is_refused_and_an_unknown_planner_gets_the_closest(plugin):
    with pytest.raises(ConfigError, match="already registered"):
        register_planner(name="tracker", summary="mine")(lambda ctx: None)
    with pytest.raises(ConfigError, match="did you mean 'cheap_first'"):
        Agent(ScriptedModel(_script), [lookup], planner="cheap_frist")


def test_an_entry_point_makes_the_planner_known_to_the_cli(plugin, tmp_path):
    _, where = plugin
    dist = tmp_path / "my_planners-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-planners\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[budgetgraph.planners]\ncheap_first = my_planners\n")
    env = {"PYTHONPATH": f"{tmp_path}{':'}{where}", "COLUMNS": "300", "PATH": "/usr/bin:/bin"}
    code = "from budgetgraph.cli import app; app(['run', '--help'])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert "cheap_first" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    listing = "from budgetgraph.agents import planner_names; import json; print(json.dumps(planner_names()))"
    proc = subprocess.run(
        [sys.executable, "-c", listing], capture_output=True, text=True, env=env, timeout=120
    )
    names = json.loads(proc.stdout.strip().splitlines()[-1])
    assert names[-1] == "cheap_first" and "tracker" in names


@pytest.fixture(scope="module")
def first_result(tmp_path_factory):
    """The docs' contributor example: react that answers after its first tool result (stop kind stopped_early)."""
    code = _example("first_result")
    assert len(code.strip().splitlines()) <= 20
    imported = {
        n
        for line in code.splitlines()
        if line.startswith("from budgetgraph")
        for n in line.split("import")[1].replace(",", " ").split()
    }
    import budgetgraph.agents

    assert imported <= set(budgetgraph.agents.__all__)  # only exported names
    where = tmp_path_factory.mktemp("first")
    (where / "first_result.py").write_text(code, encoding="utf-8")
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module("first_result")
    finally:
        sys.path.remove(str(where))
        planner_registry._REGISTRY.pop("first_result", None)
        sys.modules.pop("first_result", None)


def _many(messages, tools):
    """Searches as long as it may: only the planner's stop ends it after the first result."""
    if not tools:
        return ScriptedModel.text("<answer>Paris</answer>")
    if messages[-1].role == "user" and "No more tool calls" in messages[-1].content:
        return ScriptedModel.text("<answer>Paris</answer>")
    return ScriptedModel.tool_calls([("lookup", {"query": "capital of France"})])


def test_the_contributor_planner_stops_after_the_first_result_everywhere(first_result, tmp_path, monkeypatch):
    agent = Agent(ScriptedModel(_many), [lookup], "lookup=5", planner="first_result")
    result = agent.run("What is the capital of France?")
    assert result.stop_reason.kind == "stopped_early" and result.usage.tool_calls == {"lookup": 1}
    assert result.answer == "Paris"

    async def stream():
        return [e async for e in agent.astream("What is the capital of France?")]

    final = asyncio.run(stream())[-1]
    assert isinstance(final, FinalAnswer) and final.result.stop_reason.kind == "stopped_early"
    paused = Agent(
        ScriptedModel(_many),
        [lookup],
        "lookup=0",
        planner="first_result",
        checkpointer=InMemorySaver(),
        on_exhausted="pause",
    )

    async def pause_and_grant():
        first = await paused.arun("What is the capital of France?", thread_id="t")
        return first, await paused.aresume("t", grant={"lookup": 3})

    first, resumed = asyncio.run(pause_and_grant())
    assert first.stop_reason.kind == "interrupted" and first.budget_request is not None
    assert resumed.stop_reason.kind == "stopped_early" and resumed.usage.tool_calls == {"lookup": 1}
    monkeypatch.setenv("BUDGETGRAPH_CACHE", str(tmp_path / "cache"))
    spec = EvalSpec(
        env="hotpotqa",
        env_options={"data": str(MINI)},
        model="scripted",
        planners=("first_result",),
        budgets=("3",),
        limit=2,
    )
    summary = asyncio.run(run_eval(spec, tmp_path / "runs.jsonl", progress=False))
    _, records = ResultsFile(tmp_path / "runs.jsonl").read()
    assert summary.errors == 0 and {r["stop_reason"] for r in records} == {"stopped_early"}
