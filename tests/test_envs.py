"""Environments and scoring: HotpotQA, the strict qa loader, BFCL loading and its call checker."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import DATA, HOTPOT, MINI

from budgetgraph import Budget
from budgetgraph.agents.agent import RunResult, StopReason
from budgetgraph.agents.prompts import extract_answer
from budgetgraph.budget.ledger import Usage
from budgetgraph.envs import make_env, parse_budget_value, parse_budgets, select_tasks
from budgetgraph.envs.bfcl import BFCLEnv, to_json_schema
from budgetgraph.envs.bfcl_check import calls_match, check_call
from budgetgraph.envs.hotpotqa import HotpotQAEnv
from budgetgraph.envs.qa import read_questions
from budgetgraph.envs.scoring import best_scores, exact_match, f1_score, normalize_answer, short_answer
from budgetgraph.errors import ConfigError
from budgetgraph.models import Message, ScriptedModel, ToolCall

BFCL = DATA / "bfcl"


def _result(answer: str | None, calls: list[ToolCall] | None = None) -> RunResult:
    msgs = [Message.user("q"), Message.assistant("", calls or [])]
    return RunResult(answer, StopReason("answered"), Usage(), msgs)


# -- scoring ---------------------------------------------------------------------------------------
def test_official_normalisation_and_f1():
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert exact_match("the eiffel tower", "Eiffel Tower.") == 1.0
    assert f1_score("Barack Obama", "Obama") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert f1_score("yes", "no") == 0.0 and f1_score("no", "no") == 1.0
    assert best_scores(None, ["x"]) == {"em": 0.0, "f1": 0.0}
    assert best_scores("1,500", ["1500", "fifteen hundred"])["em"] == 1.0


def test_yes_no_sentence_is_reduced_to_its_verdict():
    assert short_answer("No, both airports are not in Michigan.") == "no"
    assert short_answer("Yes.") == "yes" and short_answer(" yes ") == "yes"
    assert short_answer("No Doubt") == "No Doubt" and short_answer("Nobody") == "Nobody"
    assert best_scores("No, they are not both located in Michigan.", ["no"]) == {"em": 1.0, "f1": 1.0}
    assert best_scores("Yes, they are.", ["no"]) == {"em": 0.0, "f1": 0.0}


def test_tool_call_text_is_not_an_answer():
    leaked = '<tool_call>\n{"name": "search", "arguments": {"queries": ["Roald Dahl"]}}\n</tool_call>'
    assert extract_answer(leaked) == ""
    assert extract_answer('<tool_call>\n{"name": "search", "argu') == ""
    assert extract_answer(leaked + "\n<answer>250 million</answer>") == "250 million"
    # a tool result the model echoes as text (seen from the 1.5B under react_nudge) is not an answer either
    echoed = '<tool_response>\nResults for "apple remote":\n1. [Siri Remote] ... The Remote is'
    assert (
        extract_answer(echoed) == "" and extract_answer(echoed + "</tool_response>\nFront Row") == "Front Row"
    )


# -- budgets ---------------------------------------------------------------------------------------
def test_budget_values():
    assert parse_budgets(["2,5", "10"]) == ("2", "5", "10")
    assert parse_budgets(["search=2,open=1;search=5,open=3"]) == ("search=2,open=1", "search=5,open=3")
    b = parse_budget_value("3", ("search", "open"))
    assert b.tool_calls == {"search": 3, "open": 3}
    assert parse_budget_value("none", ("search",)).limits() == {}
    assert parse_budget_value("4,usd=0.5", ("search", "open")).limits() == {
        "tool:search": 4,
        "tool:open": 4,
        "usd": Decimal("0.5"),
    }
    with pytest.raises(ConfigError, match="no tools to apply it to"):
        parse_budget_value("4", ())
    assert parse_budget_value("tools=4", ()).total_tool_calls == 4
    with pytest.raises(ConfigError):
        parse_budgets([""])


def test_one_budget_grammar_for_python_run_and_eval():
    """The same string means the same budget in Budget.parse, Agent(budget=...), the eval cells and run."""
    import subprocess
    import sys

    from budgetgraph import Agent, tool

    @tool
    def search(q: str) -> str:
        """Search."""
        return ""

    assert Agent(ScriptedModel([]), [search], "5").budget == Budget.parse("5", ["search"])
    assert (
        Budget.parse("5", ["search"])
        == parse_budget_value("5", ("search",))
        == Budget(tool_calls={"search": 5})
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "budgetgraph.cli",
            "run",
            "q",
            "--model",
            "scripted",
            "--budget",
            "5",
            "--json",
        ],
        capture_output=True,
        text=True,
    )  # no corpus: no tools for a bare number to apply to
    assert run.returncode == 2 and "no tools to apply it to" in run.stderr


def test_select_tasks_is_seeded_and_rejects_duplicate_ids():
    from budgetgraph.envs import Task

    tasks = [Task(str(i), f"q{i}", ["a"]) for i in range(30)]
    assert [t.id for t in select_tasks(tasks, 3, None)] == ["0", "1", "2"]
    a, b = select_tasks(tasks, 5, 7), select_tasks(tasks, 5, 7)
    assert [t.id for t in a] == [t.id for t in b] != ["0", "1", "2", "3", "4"]
    with pytest.raises(ConfigError, match="twice"):
        select_tasks([*tasks, Task("3", "again", ["a"])], None, None)


def test_shards_partition_the_selected_tasks_in_order():
    from budgetgraph.envs import Task

    tasks = [Task(str(i), f"q{i}", ["a"]) for i in range(30)]
    whole = [t.id for t in select_tasks(tasks, 10, 7)]
    shards = [[t.id for t in select_tasks(tasks, 10, 7, (i, 3))] for i in (1, 2, 3)]
    assert [len(s) for s in shards] == [4, 3, 3] and sorted(sum(shards, [])) == sorted(whole)
    assert shards[0] == whole[0::3] and shards[2] == whole[2::3]
    for bad in ((0, 3), (4, 3), (1, 0)):
        with pytest.raises(ConfigError, match="e.g. --shard 1/2"):
            select_tasks(tasks, 10, 7, bad)


def test_only_keeps_the_named_tasks_of_the_selection_and_refuses_others():
    from budgetgraph.envs import Task

    tasks = [Task(str(i), f"q{i}", ["a"]) for i in range(30)]
    whole = [t.id for t in select_tasks(tasks, 10, 7)]
    picked = [whole[5], whole[1], whole[8]]
    assert [t.id for t in select_tasks(tasks, 10, 7, only=picked)] == [whole[1], whole[5], whole[8]]
    assert [t.id for t in select_tasks(tasks, 10, 7, (2, 2), picked)] == [whole[5]]
    outside = next(t.id for t in tasks if t.id not in whole)
    with pytest.raises(ConfigError, match="not in the selection"):
        select_tasks(tasks, 10, 7, only=[whole[0], outside])


# -- hotpotqa --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hotpot_env(tmp_path_factory) -> HotpotQAEnv:
    if not HOTPOT.exists():
        pytest.skip(f"shared data not found at {HOTPOT}")
    return HotpotQAEnv(HOTPOT, cache_dir=tmp_path_factory.mktemp("corpora"))


def test_hotpot_pools_every_paragraph_of_the_file(hotpot_env):
    tasks = hotpot_env.tasks()
    assert len(tasks) == 350
    rows = [json.loads(line) for line in HOTPOT.read_text().splitlines()]
    pooled = {(t, "".join(s)) for r in rows for t, s in r["context"]}
    assert len(hotpot_env.corpus) == len(pooled) > 3000
    first = tasks[0]
    assert first.gold == [rows[0]["answer"]] and first.meta["support"]
    assert hotpot_env.corpus.get(first.meta["support"][0]) is not None


def test_hotpot_scores_answer_and_supporting_titles(hotpot_env):
    task = hotpot_env.tasks()[0]
    opened = [ToolCall("c1", "open", {"title": t}) for t in task.meta["support"][:1]]
    s = hotpot_env.score(task, _result(task.gold[0].upper() + ".", opened))
    assert s["em"] == 1.0 and s["correct"] == 1.0 and s["f1"] == 1.0
    assert s["support_recall"] == pytest.approx(1 / len(task.meta["support"]))
    assert hotpot_env.score(task, _result(None))["correct"] == 0.0


def test_hotpot_env_on_the_made_up_fixture(tmp_path):
    env = HotpotQAEnv(MINI, cache_dir=tmp_path)
    tasks = env.tasks()
    rows = [json.loads(line) for line in MINI.read_text().splitlines()]
    assert len(tasks) == 16 and [t.id for t in tasks] == [r["_id"] for r in rows]
    pooled = {(t, "".join(s)) for r in rows for t, s in r["context"]}
    assert len(env.corpus) == len(pooled)
    task = tasks[0]
    assert env.corpus.search(task.question, 3)  # BM25 finds something for the question
    opened = [ToolCall("c1", "open", {"title": t}) for t in task.meta["support"]]
    s = env.score(task, _result(task.gold[0], opened))
    assert (s["em"], s["correct"], s["support_recall"]) == (1.0, 1.0, 1.0)


def test_tool_cache_is_an_env_option_written_to_the_header_only_when_set(tmp_path):
    from typer.testing import CliRunner

    from budgetgraph.cli import app

    assert not any(t.cache for t in HotpotQAEnv(MINI, cache_dir=tmp_path).corpus.tools())
    cached = HotpotQAEnv(MINI, cache_dir=tmp_path, tool_cache=True)
    assert all(t.cache for t in cached._tools)
    run = ["eval", "hotpotqa", "--data", str(MINI), "--model", "scripted", "--planner", "react"]
    run += ["--budget", "2", "--limit", "1", "--no-progress"]
    for flag, name in (([], "plain"), (["--tool-cache"], "cached")):
        out = tmp_path / f"{name}.jsonl"
        done = CliRunner().invoke(app, [*run, *flag, "--out", str(out)])
        assert done.exit_code == 0, done.output
        options = json.loads(out.read_text().splitlines()[0])["spec"]["env_options"]
        assert options.get("tool_cache") is (True if flag else None)
    bad = CliRunner().invoke(app, ["eval", "costplan", "--tool-cache", "--out", str(tmp_path / "c.jsonl")])
    assert bad.exit_code != 0 and "--tool-cache is for hotpotqa, qa and coding" in bad.output


def test_hotpot_reader_errors(tmp_path):
    bad = tmp_path / "h.jsonl"
    bad.write_text('{"_id": "1", "question": "q"}\n')
    with pytest.raises(ConfigError, match="lacks answer, context"):
        HotpotQAEnv(bad)
    with pytest.raises(ConfigError, match="not found"):
        HotpotQAEnv(tmp_path / "missing.json")


# -- qa: strict loader -----------------------------------------------------------------------------
def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"id": "1", "question": "q?"}], r"h.jsonl:1: missing field\(s\) answers"),
        (
            [{"id": "1", "question": "q", "answers": ["a"]}, {"id": "1", "question": "r", "answers": ["b"]}],
            r"h.jsonl:2: duplicate id '1' \(first on line 1\)",
        ),
        ([{"id": "1", "question": "q", "answers": []}], "has no answers"),
        ([{"id": "1", "question": "q", "answers": "Paris"}], r'must be a list of strings, e.g. \["Paris"\]'),
        ([{"id": "1", "question": "", "answers": ["a"]}], "non-empty string"),
        ([{"id": "1", "question": "q", "answers": ["a", 3]}], "must all be non-empty strings"),
        (["{not json"], "h.jsonl:1: not valid JSON"),
        ([], "no questions found"),
    ],
)
def test_qa_loader_rejects_bad_questions(tmp_path, rows, message):
    with pytest.raises(ConfigError, match=message):
        read_questions(_write(tmp_path / "h.jsonl", rows))


def test_qa_env_errors_name_the_corpus_problem(tmp_path):
    q = _write(tmp_path / "q.jsonl", [{"id": 1, "question": "Where?", "answers": ["Paris"]}])
    empty = _write(tmp_path / "c.jsonl", [])
    with pytest.raises(ConfigError, match="corpus is empty"):
        make_env("qa", str(q), str(empty), cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="needs --corpus"):
        make_env("qa", str(q))
    with pytest.raises(ConfigError, match="corpus not found"):
        make_env("qa", str(q), str(tmp_path / "nope.jsonl"))
    broken = _write(tmp_path / "b.jsonl", [{"id": "1", "title": "T"}])
    with pytest.raises(ConfigError, match="missing field"):
        make_env("qa", str(q), str(broken), cache_dir=tmp_path)


def test_qa_env_runs_a_scripted_agent_on_user_data(tmp_path):
    q = _write(
        tmp_path / "q.jsonl",
        [
            {
                "id": "a",
                "question": "Which city is the capital of France",
                "answers": ["Paris", "Paris, France"],
            }
        ],
    )
    c = _write(
        tmp_path / "c.jsonl",
        [
            {"id": "1", "title": "Paris", "text": "Paris is the capital city of France."},
            {"id": "2", "title": "Berlin", "text": "Berlin is the capital of Germany."},
        ],
    )
    env = make_env("qa", str(q), str(c), cache_dir=tmp_path)
    import asyncio

    task = env.tasks()[0]
    result = asyncio.run(env.run_episode(task, ScriptedModel.qa_policy(), "tracker", env.budget("2")))
    assert result.answer == "Paris"
    assert env.score(task, result) == {"em": 1.0, "f1": 1.0, "correct": 1.0}
    assert result.usage.tool_calls == {"search": 1, "open": 1}


# -- bfcl ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bfcl_env() -> BFCLEnv:
    if not BFCL.exists():
        pytest.skip(f"shared data not found at {BFCL}")
    return BFCLEnv(BFCL)


def test_bfcl_loads_all_single_turn_categories(bfcl_env):
    counts = bfcl_env.describe()["categories"]
    assert counts == {
        "simple_python": 400,
        "multiple": 200,
        "parallel": 200,
        "parallel_multiple": 200,
        "irrelevance": 240,
    }


def test_bfcl_schema_conversion():
    spec = {
        "type": "dict",
        "properties": {"x": {"type": "float"}, "p": {"type": "tuple", "items": {"type": "any"}}},
    }
    assert to_json_schema(spec) == {
        "type": "object",
        "properties": {"x": {"type": "number"}, "p": {"type": "array", "items": {}}},
    }


def _concrete(accepted):
    """The first accepted value, with nested dicts (which hold accepted lists per key) made concrete too."""
    if isinstance(accepted, dict):
        return {k: _concrete(v[0]) for k, v in accepted.items() if v and v[0] != ""}
    if isinstance(accepted, list):
        return [_concrete(v) for v in accepted]
    return accepted


def _first_answer(ground_truth):
    """One concrete call list built from the first accepted value of every argument."""
    calls = []
    for entry in ground_truth:
        ((name, params),) = entry.items()
        calls.append((name, {k: _concrete(v[0]) for k, v in params.items() if v and v[0] != ""}))
    return calls


def test_bfcl_checker_accepts_the_reference_answers(bfcl_env):
    checked = 0
    for task in bfcl_env.tasks():
        if task.meta["category"] == "irrelevance":
            continue
        calls = _first_answer(task.gold)
        assert calls_match(calls, task.gold) is None, task.id
        assert calls_match(list(reversed(calls)), task.gold) is None, task.id
        checked += 1
    assert checked == 1000


def test_bfcl_checker_rejects_wrong_calls():
    gt = [{"math.hypot": {"x": [4], "y": [5], "z": ["", 0]}}]
    assert check_call("math.hypot", {"x": 4, "y": 5}, gt[0]) is None
    assert check_call("math.hypot", {"x": 4.0, "y": 5, "z": 0}, gt[0]) is None
    assert "missing required" in check_call("math.hypot", {"x": 4}, gt[0])
    assert "not among" in check_call("math.hypot", {"x": 4, "y": 6}, gt[0])
    assert "unexpected" in check_call("math.hypot", {"x": 4, "y": 5, "w": 1}, gt[0])
    assert "expected 'math.hypot'" in check_call("hypot", {"x": 4, "y": 5}, gt[0])
    assert calls_match([("math.hypot", {"x": 4, "y": 5})] * 2, gt) == "2 call(s) made, 1 expected"
    assert check_call("f", {"s": "New York, NY"}, {"f": {"s": ["new york ny"]}}) is None
    assert check_call("f", {"b": 1}, {"f": {"b": [True]}}) is not None


def test_bfcl_episode_scores_a_scripted_model_and_caps_calls(bfcl_env):
    import asyncio

    by_question = {t.question: t for t in bfcl_env.tasks()}

    def oracle(messages, tools):
        turns = [{"role": m.role, "content": m.content} for m in messages if m.role != "system"]
        task = by_question[json.dumps(turns, ensure_ascii=False)]
        if task.meta["category"] == "irrelevance":
            return ScriptedModel.text("None of these functions fits.")
        return ScriptedModel.tool_calls([(n.replace(".", "_"), a) for n, a in _first_answer(task.gold)])

    model = ScriptedModel(oracle, record=False)
    picked = [
        t
        for c in ("simple_python", "parallel", "irrelevance")
        for t in [x for x in bfcl_env.tasks() if x.meta["category"] == c][:3]
    ]
    for task in picked:
        result = asyncio.run(bfcl_env.run_episode(task, model, "single_call", bfcl_env.budget("none")))
        assert bfcl_env.score(task, result) == {"correct": 1.0}, task.id
    parallel = next(t for t in picked if t.meta["category"] == "parallel")
    capped = asyncio.run(
        bfcl_env.run_episode(parallel, model, "single_call", bfcl_env.budget_for(parallel, "1"))
    )
    fn = parallel.meta["functions"][0]["name"].replace(".", "_")
    assert sum(capped.usage.tool_calls.values()) == 1 and str(capped.stop_reason) == f"budget_exhausted: {fn}"
    assert bfcl_env.score(parallel, capped) == {"correct": 0.0}


def test_each_environment_takes_the_cli_options_its_registry_entry_names():
    from budgetgraph.envs.registry import env_options

    with pytest.raises(ConfigError, match="--isolation is for coding, not hotpotqa"):
        env_options("hotpotqa", {"isolation": "none"}, max_tokens=512, data="d.jsonl", prices=None, seed=None)
    with pytest.raises(ConfigError, match="--corpus is for qa, not hotpotqa"):
        env_options("hotpotqa", {"corpus": "c.jsonl"}, max_tokens=512, data="d.jsonl", prices=None, seed=None)
    with pytest.raises(ConfigError, match="--isolation must be bwrap, unshare or none"):
        env_options("coding", {"isolation": "chroot"}, max_tokens=512, data=None, prices=None, seed=None)
    options, seed = env_options(
        "qa",
        {"corpus": "c.jsonl", "tool_cache": False},
        max_tokens=64,
        data="q.jsonl",
        prices="p.yaml",
        seed=3,
    )
    assert options == {"data": "q.jsonl", "max_tokens": 64, "corpus": "c.jsonl", "prices_file": "p.yaml"}
    assert seed == 3  # it samples the tasks
    given = {"tasks": 5, "level": 2, "event": "none", "prior_mix": 0.25}
    options, seed = env_options("costplan", given, max_tokens=64, data=None, prices=None, seed=7)
    assert options == {
        "tasks": 5,
        "seed": 7,
        "level": 2,
        "event": "none",
        "max_tokens": 64,
        "prior_mix": 0.25,
    }
    assert seed is None  # the seed generated the tasks
