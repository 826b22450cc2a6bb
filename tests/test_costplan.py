"""The costplan world, its exact optimum, the blocking events, and model-free MCTS on it."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys

import pytest

from budgetgraph.envs.costplan import CostPlanEnv, _Problem
from budgetgraph.envs.costplan_world import World, generate_tasks, shortest_plan
from budgetgraph.errors import ConfigError, ToolRejected
from budgetgraph.models import ScriptedModel
from budgetgraph.planners.mcts import mcts_search


def _brute_optimum(tools, goal):
    best = float("inf")
    by_start = {}
    for t in tools:
        by_start.setdefault(t.start, []).append(t)

    def walk(stage, cost):
        nonlocal best
        if stage == goal:
            best = min(best, cost)
            return
        for t in by_start.get(stage, []):
            walk(t.end, cost + t.cost)

    walk(0, 0.0)
    return best


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_generated_tasks_are_reproducible_and_the_optimum_is_exact(level):
    a, b = generate_tasks(5, 11, level=level), generate_tasks(5, 11, level=level)
    assert a == b and a != generate_tasks(5, 12, level=level)
    for task in a:
        atomic = [t for t in task.tools if t.atomic]
        assert len(atomic) == level + 3 and all(15 <= t.cost <= 25 for t in atomic)
        assert not any(
            t.start == 0 and t.end == task.stages for t in task.tools
        )  # the one-call tool is banned
        cost, plan = shortest_plan(task.tools, 0, task.stages)
        assert cost == pytest.approx(_brute_optimum(task.tools, task.stages))
        assert sum(next(t.cost for t in task.tools if t.name == n) for n in plan) == pytest.approx(cost)


def test_world_checks_inputs_and_refunds_nothing_it_did_not_do():
    world = World(generate_tasks(1, 3)[0])
    first = world.reference[0]
    with pytest.raises(ToolRejected, match="pass the data you hold"):
        world.check(first, "query#000000")
    late = next(t for t in world.tools.values() if t.start == 2)
    with pytest.raises(ToolRejected, match="needs a"):
        world.check(late.name, world.data_id())
    world.check(first, world.data_id())
    world.check(first, world.data_id().split("#")[1])  # small models drop the type prefix; the hash is enough
    out = world.apply(first)
    assert "You now hold" in out and world.stage == world.tools[first].end and world.spent > 0


@pytest.mark.parametrize("event", ["ban_tool", "cost_change", "preference_change", "steplen_change"])
def test_each_event_changes_the_world_and_the_reference(event):
    task = generate_tasks(1, 5, event=event)[0]
    world = World(task)
    before = list(world.reference)
    for name in before[: task.trigger]:
        text = world.apply(world.check(name, world.data_id()).name)
    assert world.fired and "[EVENT]" in text
    assert world.reference[: task.trigger] == before[: task.trigger]
    rest_cost, rest = shortest_plan(world.available(), world.stage, task.stages)
    assert world.reference[task.trigger :] == rest
    if event == "ban_tool":
        assert len(world.banned) == 1 and not set(rest) & world.banned
    if event == "preference_change":
        assert world.stage == 0 and world.answer_id() != World(task).answer_id()
    if event == "steplen_change":
        assert all(t.end - t.start <= 2 for t in world.available())


@pytest.mark.parametrize("level", [1, 2, 3])
def test_model_free_mcts_finds_the_optimum_and_detects_infeasible_budgets(level):
    exact = 0
    tasks = generate_tasks(20, 21, level=level)
    for task in tasks:
        world = World(task)
        problem = _Problem(world)
        found = mcts_search(problem, 0, world.reference_cost * 1.5, iterations=400, seed=1)
        assert found.feasible and found.cost <= world.reference_cost * 1.5 + 1e-6
        exact += found.cost == pytest.approx(world.reference_cost)
        tight = mcts_search(problem, 0, world.reference_cost * 0.95, iterations=400)
        assert not tight.feasible and "infeasible within budget" in tight.reason
    assert exact / len(tasks) >= 0.9, f"exact-match rate {exact}/{len(tasks)} at level {level}"


def test_a_prior_that_scores_the_optimal_actions_zero_is_mixed_with_uniform():
    found = {0.0: 0, 0.25: 0}
    tasks = generate_tasks(20, 5, level=2)
    for task in tasks:
        world = World(task)
        problem = _Problem(world)
        best = set(world.reference)

        def misleading(_state, options, best=best):  # a weak model's scores: 0 for every optimal step
            return {a: (0.0 if a in best else 1.0) for a, _ in options}

        for mix in found:
            got = mcts_search(
                problem, 0, world.reference_cost * 1.5, iterations=300, prior=misleading, prior_mix=mix
            )
            found[mix] += got.cost == pytest.approx(world.reference_cost)
    assert found[0.25] > found[0.0], found
    with pytest.raises(ValueError, match="prior_mix"):
        mcts_search(_Problem(World(tasks[0])), 0, 1.0, prior_mix=1.5)


def test_costplan_env_scores_mcts_and_scripted_agents():
    env = CostPlanEnv(tasks=6, seed=2, event="mixed")
    model = ScriptedModel(lambda m, t: ScriptedModel.text("<answer>no idea</answer>"), record=False)
    for task in env.tasks():
        result = asyncio.run(env.run_episode(task, model, "mcts-uniform", env.budget_for(task, "x2")))
        scores = env.score(task, result)
        assert scores["correct"] == 1.0 and result.usage.usd > 0
        assert float(result.usage.usd) <= float(env.budget_for(task, "x2").usd)
        if "adapted" in scores:
            assert scores["adapted"] == 1.0
        lost = asyncio.run(env.run_episode(task, model, "react", env.budget_for(task, "x2")))
        assert env.score(task, lost)["correct"] == 0.0 and env.score(task, lost)["ned"] == 1.0
    with pytest.raises(ConfigError, match="unknown event"):
        CostPlanEnv(event="meteor")
    with pytest.raises(ConfigError, match="does not run costplan"):
        env.check_planner("bats")


def test_relative_and_absolute_budgets():
    env = CostPlanEnv(tasks=2, seed=0)
    task = env.tasks()[0]
    ref = World(env._tasks[task.id]).reference_cost
    assert float(env.budget_for(task, "x1.5").usd) == pytest.approx(ref * 1.5, abs=0.01)
    b = env.budget_for(task, "usd=120")
    assert b.usd == 120 and b.total_tool_calls == 20
    assert env.budget_for(task, "usd=120,tools=50").total_tool_calls == 20  # the step limit still binds
    with pytest.raises(ConfigError, match="write usd=120 for a dollar cap or x120"):
        env.budget_for(task, "120")  # one grammar: a bare number is never dollars
    assert list(itertools.islice(env.tasks(), 1))[0].meta == {"event": "static"}


def test_cli_costplan_defaults_to_a_budget_relative_to_the_optimum(tmp_path):
    out = tmp_path / "cp.jsonl"
    cmd = [sys.executable, "-m", "budgetgraph.cli", "eval", "costplan", "--tasks", "3", "--seed", "7"]
    cmd += ["--model", "scripted", "--planner", "mcts-uniform", "--out", str(out), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["spec"]["budgets"] == ["x1.5"]
    assert [r["scores"]["success"] for r in rows[1:]] == [1.0, 1.0, 1.0]
    assert all(r["answer"] != "infeasible" for r in rows[1:])


def test_tracker_sees_planning_advice_not_search_advice():
    env = CostPlanEnv(tasks=1, seed=3)
    task = env.tasks()[0]
    seen: list[str] = []

    def reply(messages, tools):
        seen.extend(m.content for m in messages if m.role in ("system", "tool"))
        if any(m.role == "tool" for m in messages):
            return ScriptedModel.text("<answer>infeasible</answer>")
        first = next(iter(tools))
        return ScriptedModel.tool_calls([(first.name, {"data": "nothing#0"})])

    model = ScriptedModel(reply, record=False)
    asyncio.run(env.run_episode(task, model, "tracker", env.budget_for(task, "x1.5")))
    text = "\n".join(seen)
    assert "planning agent" in text and "compare options before committing" in text  # the block's advice
    assert "<budget>" in text and "regime: HIGH" in text
    assert "queries" not in text and "documents" not in text
    seen.clear()  # with the intro, the system prompt explains the regimes in planning words too
    asyncio.run(env.run_episode(task, model, "tracker[budget_intro=true]", env.budget_for(task, "x1.5")))
    text = "\n".join(seen)
    assert "cheapest path that still fits" in text and "queries" not in text and "documents" not in text
