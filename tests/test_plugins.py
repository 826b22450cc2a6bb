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


def _example() -> str:
    """The ``my_planners.py`` block of docs/planners.md, as written there."""
    text = (ROOT / "docs" / "planners.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(# my_planners\.py\n.*?)```", text, re.DOTALL)
    assert len(blocks) == 1, "docs/planners.md has one my_planners.py example"
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
