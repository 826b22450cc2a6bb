"""The evaluation runner: a scripted sweep end to end, resume after SIGINT, SIGTERM and SIGKILL, errors, report, Ray."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import HOTPOT, MINI

from budgetgraph.envs import EvalSpec, ResultsFile, run_eval
from budgetgraph.envs.hotpotqa import HotpotQAEnv
from budgetgraph.envs.report import paired, pareto_front, summarize
from budgetgraph.errors import ConfigError
from budgetgraph.models import ScriptedModel

REQUIRED = {"task_id", "planner", "budget", "model", "answer", "gold", "scores", "stop_reason", "usage"}


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("BUDGETGRAPH_CACHE", str(tmp_path_factory.getbasetemp() / "bg-cache"))


def _spec(**kw) -> EvalSpec:
    base = dict(
        env="hotpotqa",
        env_options={"data": str(MINI)},
        model="scripted",
        planners=("react", "tracker"),
        budgets=("1", "3"),
        limit=6,
        concurrency=8,
    )
    return EvalSpec(**{**base, **kw})


def _episodes(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if '"type": "episode"' in line]


def test_scripted_sweep_writes_every_cell_once_and_resumes(tmp_path):
    out = tmp_path / "r.jsonl"
    summary = asyncio.run(run_eval(_spec(), out, progress=False))
    assert (summary.total, summary.ran, summary.skipped, summary.errors) == (24, 24, 0, 0)
    lines = out.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["type"] == "header" and header["spec"]["budgets"] == ["1", "3"]
    assert header["versions"]["budgetgraph"] and header["env_info"]["questions"] == 16
    records = _episodes(out)
    assert len(records) == 24 and all(REQUIRED <= r.keys() for r in records)
    assert Counter((r["planner"], r["budget"]) for r in records) == {
        ("react", "1"): 6,
        ("react", "3"): 6,
        ("tracker", "1"): 6,
        ("tracker", "3"): 6,
    }
    r = records[0]
    assert r["usage"]["tool_calls"] == {"search": 1, "open": 1} and r["usage"]["usd"] == pytest.approx(0.002)
    assert r["transcript"][0]["role"] == "user" and r["transcript"][1]["tool_calls"][0]["name"] == "search"
    # the policy answers with the title it opened: sometimes right on this data, never an error
    assert {r["scores"]["correct"] for r in records} <= {0.0, 1.0}

    again = asyncio.run(run_eval(_spec(), out, progress=False))
    assert (again.ran, again.skipped) == (0, 24)
    wider = asyncio.run(run_eval(_spec(budgets=("1", "3", "5")), out, progress=False))
    assert (wider.ran, wider.skipped) == (12, 24)
    assert (
        len(_episodes(out)) == 36 == len({(r["task_id"], r["planner"], r["budget"]) for r in _episodes(out)})
    )


def test_a_sweep_split_in_shards_runs_each_task_once_and_reads_back_whole(tmp_path):
    from budgetgraph.envs.results import read_results

    whole = tmp_path / "whole.jsonl"
    asyncio.run(run_eval(_spec(budgets=("1",)), whole, progress=False))
    parts = [tmp_path / f"part{i}.jsonl" for i in (1, 2)]
    for i, part in enumerate(parts, 1):
        summary = asyncio.run(run_eval(_spec(budgets=("1",), shard=(i, 2)), part, progress=False))
        assert (summary.total, summary.ran) == (6, 6)  # 3 of the 6 tasks x 2 planners
    ids = [{r["task_id"] for r in _episodes(p)} for p in parts]
    assert not ids[0] & ids[1] and ids[0] | ids[1] == {r["task_id"] for r in _episodes(whole)}
    _, together = read_results(parts)

    def cells(records):
        return sorted((r["task_id"], r["planner"], r["answer"], r["scores"]["correct"]) for r in records)

    assert cells(together) == cells(_episodes(whole))


def test_the_shard_option_runs_its_slice_and_rejects_a_malformed_value(tmp_path):
    out = tmp_path / "s.jsonl"
    ran = subprocess.run([*_cli(out, "--shard", "2/3", model="scripted")], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    whole = [t.id for t in HotpotQAEnv(MINI).tasks()][:15]
    assert {r["task_id"] for r in _episodes(out)} == set(whole[1::3])
    for bad in ("2", "x/3", "4/3"):
        refused = subprocess.run(
            [*_cli(tmp_path / "b.jsonl", "--shard", bad)], capture_output=True, text=True
        )
        assert refused.returncode != 0 and "1/2" in refused.stderr + refused.stdout, bad


def test_only_runs_the_ids_of_a_held_out_file(tmp_path):
    ids = [t.id for t in HotpotQAEnv(MINI).tasks()][:15]
    held = tmp_path / "w.json"
    held.write_text(json.dumps({"held_out_tasks": [ids[3], ids[9]]}))
    out = tmp_path / "o.jsonl"
    ran = subprocess.run(_cli(out, "--only", f"@{held}", model="scripted"), capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert {r["task_id"] for r in _episodes(out)} == {ids[3], ids[9]}
    for bad in (f"@{tmp_path / 'none.json'}", "nope"):
        refused = subprocess.run(_cli(tmp_path / "b.jsonl", "--only", bad), capture_output=True, text=True)
        assert refused.returncode != 0 and "--only" in refused.stderr + refused.stdout, bad


def test_each_episode_records_its_source_and_a_resume_from_other_code_warns(tmp_path):
    from budgetgraph.envs.provenance import source_revision

    rev = source_revision()
    if rev is None:
        pytest.skip("budgetgraph is not running from a git checkout: no source revision to record")
    out = tmp_path / "r.jsonl"
    asyncio.run(run_eval(_spec(limit=1, budgets=("1",)), out, progress=False))
    lines = out.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["versions"]["source"] == rev and {r["source"] for r in _episodes(out)} == {rev}
    header["versions"]["source"] = "0123456789ab"
    out.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    with pytest.warns(UserWarning, match="from budgetgraph source 0123456789ab and this run is from"):
        asyncio.run(run_eval(_spec(limit=2, budgets=("1",)), out, progress=False))
    assert [r["source"] for r in _episodes(out)] == [rev, rev, rev, rev]


def test_every_episode_names_the_machine_it_ran_on(tmp_path, monkeypatch):
    from budgetgraph.envs.provenance import machine_tag

    monkeypatch.setenv("BUDGETGRAPH_GPU_LAYERS", "-1")
    tag = machine_tag()
    assert tag.endswith("gpu layers -1") and "cores" in tag
    out = tmp_path / "r.jsonl"
    asyncio.run(run_eval(_spec(limit=2, budgets=("1",)), out, progress=False))
    assert json.loads(out.read_text().splitlines()[0])["versions"]["machine"] == tag
    assert {r["machine"] for r in _episodes(out)} == {tag}


def test_resume_refuses_a_file_from_another_environment(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text(json.dumps({"type": "header", "spec": {}, "env_info": {"env": "bfcl"}}) + "\n")
    with pytest.raises(ConfigError, match="another environment"):
        asyncio.run(run_eval(_spec(), out, progress=False))


def test_a_torn_last_line_is_dropped_and_a_damaged_middle_line_is_an_error(tmp_path):
    out = tmp_path / "r.jsonl"
    asyncio.run(run_eval(_spec(limit=2, budgets=("1",)), out, progress=False))
    whole = out.read_bytes()
    out.write_bytes(whole + b'{"type": "episode", "task_id": "x", "plan')
    header, records = ResultsFile(out).read()  # a reader leaves it alone: it may be a line being written
    assert header is not None and len(records) == 4 and out.read_bytes().startswith(whole)
    asyncio.run(run_eval(_spec(limit=2, budgets=("1",)), out, progress=False))  # the writer trims it
    assert out.read_bytes() == whole
    lines = whole.split(b"\n")
    out.write_bytes(b"\n".join([lines[0], b"{oops", *lines[1:]]))
    with pytest.raises(ConfigError, match=r"r.jsonl:2: not a valid JSON line"):
        ResultsFile(out).read()


def test_an_episode_that_errors_is_recorded_wrong_and_the_run_goes_on(tmp_path):
    env = HotpotQAEnv(MINI)
    bad = env.tasks()[1].question

    def policy(messages, tools):
        if messages[1].content == bad:
            raise RuntimeError("backend fell over")
        return ScriptedModel.qa_policy()._fn(messages, tools)  # type: ignore[misc]

    out = tmp_path / "r.jsonl"
    summary = asyncio.run(
        run_eval(
            _spec(limit=3, budgets=("2",), planners=("react",)),
            out,
            progress=False,
            env_factory=lambda: env,
            model_factory=lambda: ScriptedModel(policy, record=False),
        )
    )
    assert (summary.ran, summary.errors) == (3, 1)
    failed = [r for r in _episodes(out) if r["error"]]
    assert len(failed) == 1 and "backend fell over" in failed[0]["error"]
    assert failed[0]["scores"]["correct"] == 0.0 and failed[0]["stop_reason"].startswith("error")


def test_report_table_pareto_and_plot(tmp_path):
    out = tmp_path / "r.jsonl"
    asyncio.run(run_eval(_spec(), out, progress=False))
    rows = summarize(_episodes(out))
    assert [(r.planner, r.budget, r.n) for r in rows] == [
        ("react", "1", 6),
        ("react", "3", 6),
        ("tracker", "1", 6),
        ("tracker", "3", 6),
    ]
    row = rows[0]
    assert row.tool_calls == {"open": 1.0, "search": 1.0} and row.cost == pytest.approx(0.002)
    assert row.e3 == pytest.approx(row.accuracy**2 / row.tokens)
    assert pareto_front([(1, 0.2), (2, 0.1), (2, 0.3), (0.5, 0.2)]) == [3, 2]
    png = tmp_path / "p.png"
    proc = subprocess.run(
        [sys.executable, "-m", "budgetgraph.cli", "report", str(out), "--plot", str(png)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "220"},  # the wide table, whatever width the test process has
    )
    assert proc.returncode == 0, proc.stderr
    assert "cost-of-pass" in proc.stdout and "tracker" in proc.stdout
    from matplotlib.image import imread

    image = imread(png)
    assert image.shape[0] > 400 and image.shape[1] > 600 and image.std() > 0.01


def test_paired_report_keeps_the_tasks_every_cell_finished(tmp_path):
    out = tmp_path / "r.jsonl"
    asyncio.run(run_eval(_spec(), out, progress=False))
    episodes = _episodes(out)
    late = sorted({e["task_id"] for e in episodes})[-2:]
    partial = [
        e for e in episodes if not (e["planner"] == "tracker" and e["budget"] == "3" and e["task_id"] in late)
    ]
    kept = paired(partial)
    assert {e["task_id"] for e in kept} == {e["task_id"] for e in episodes} - set(late)
    assert [r.n for r in summarize(kept)] == [4, 4, 4, 4]
    assert [r.n for r in summarize(partial)] == [6, 6, 6, 4]
    with out.open("w") as fh:
        fh.writelines(json.dumps(e) + "\n" for e in partial)
    cmd = [sys.executable, "-m", "budgetgraph.cli", "report", str(out)]
    plain = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0 and "--paired compares them" in plain.stdout
    both = subprocess.run([*cmd, "--paired"], capture_output=True, text=True, timeout=120)
    assert both.returncode == 0 and "--paired compares them" not in both.stdout


def _cli(out: Path, *extra: str, model: str = "scripted:0.05") -> list[str]:
    return [
        sys.executable,
        "-m",
        "budgetgraph.cli",
        "eval",
        "hotpotqa",
        "--data",
        str(MINI),
        "--model",
        model,
        "--planner",
        "react,tracker",
        "--budget",
        "1,2",
        "--limit",
        "15",
        "--concurrency",
        "3",
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]


def _default_sigint() -> None:
    """SIGINT back to its default in a child: a shell ignores it for the commands it starts in the background
    (a CI job run with `&`), a child inherits that, and Python then installs no Ctrl-C handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"]
)
def test_killed_run_resumes_without_losing_or_duplicating(tmp_path, sig):
    out = tmp_path / "r.jsonl"
    proc = subprocess.Popen(
        _cli(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or len(_episodes(out)) < 8):
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    partial = len(_episodes(out))
    assert 8 <= partial < 60, "the kill must land part-way through the run"
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "interrupted" in err and "rerun the same command to resume" in err
    elif sig == signal.SIGTERM:
        assert proc.returncode == 143 and "terminated" in err and "rerun the same command to resume" in err
    else:
        assert proc.returncode == -signal.SIGKILL
    done = subprocess.run(_cli(out), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{60 - partial} episodes run, {partial} already in" in done.stderr
    keys = [(r["task_id"], r["planner"], r["budget"]) for r in _episodes(out)]
    assert len(keys) == 60 == len(set(keys))


def test_ray_executor_writes_the_same_file(tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    out = tmp_path / "r.jsonl"
    summary = asyncio.run(run_eval(_spec(limit=4), out, executor="ray", progress=False))
    assert (summary.ran, summary.errors) == (16, 0)
    local = tmp_path / "l.jsonl"
    asyncio.run(run_eval(_spec(limit=4), local, progress=False))
    pick = lambda p: sorted((r["task_id"], r["planner"], r["budget"], r["answer"]) for r in _episodes(p))  # noqa: E731
    assert pick(out) == pick(local)


def test_bats_and_plan_and_budget_per_role_usage_adds_up_in_the_results_file(tmp_path):
    from budgetgraph.envs.report import role_mismatches

    out = tmp_path / "r.jsonl"
    summary = asyncio.run(
        run_eval(
            _spec(planners=("bats", "plan_and_budget"), budgets=("2", "5"), limit=4), out, progress=False
        )
    )
    assert (summary.ran, summary.errors) == (16, 0)
    records = _episodes(out)
    assert all(r["usage"]["by_role"] for r in records)
    assert {"plan", "act", "verify"} <= set(
        next(r for r in records if r["planner"] == "bats")["usage"]["by_role"]
    )
    assert role_mismatches(records) == []
    broken = dict(records[0], usage=dict(records[0]["usage"], llm_calls=records[0]["usage"]["llm_calls"] + 1))
    assert role_mismatches([broken]) == [broken["task_id"]]


def test_a_sweep_over_the_real_hotpotqa_file(tmp_path):
    """The same runner over the official-format shared data (350 questions, 3,400 paragraphs)."""
    if not HOTPOT.exists():
        pytest.skip(f"shared data not found at {HOTPOT}")
    out = tmp_path / "r.jsonl"
    spec = _spec(env_options={"data": str(HOTPOT)}, limit=4)
    summary = asyncio.run(run_eval(spec, out, progress=False))
    assert (summary.total, summary.ran, summary.errors) == (16, 16, 0)
    header = json.loads(out.read_text().splitlines()[0])
    assert header["env_info"]["questions"] == 350
    records = _episodes(out)
    assert all(r["usage"]["tool_calls"] == {"search": 1, "open": 1} for r in records)
    # the scripted policy answers with the title it opened; on the first questions of this file some are right
    assert {r["scores"]["correct"] for r in records} <= {0.0, 1.0}


def test_the_sweep_tunes_the_collector_and_restores_it():
    """Fewer young collections and the set-up frozen out during a sweep; cycles are still collected."""
    import gc
    import weakref

    from budgetgraph.envs.runner import sweep_collector

    class Node:
        pass

    before = gc.get_threshold()
    with sweep_collector():
        assert gc.get_threshold()[0] >= 50_000 and gc.get_freeze_count() > 0
        refs = []
        for _ in range(200_000):  # cyclic garbage, more than one young-generation threshold of it
            a, b = Node(), Node()
            a.other, b.other = b, a
            refs.append(weakref.ref(a))
        alive = sum(r() is not None for r in refs)
        assert alive < 150_000  # collected while the sweep runs: memory stays bounded
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_a_second_run_on_the_same_results_file_is_refused(tmp_path):
    out = tmp_path / "r.jsonl"
    # the first run is slow (0.5 s a model call, 20 s or more in all) so it is still writing when the second starts
    first = subprocess.Popen(
        _cli(out, model="scripted:0.5"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (out.exists() and _episodes(out)):
            time.sleep(0.05)
        second = subprocess.run(_cli(out), capture_output=True, text=True, timeout=120)
        assert first.poll() is None, "the first run ended before the second started: the test proves nothing"
        assert second.returncode == 2 and "another run is writing" in second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=120)
    keys = [(r["task_id"], r["planner"], r["budget"]) for r in _episodes(out)]
    assert keys and len(keys) == len(set(keys))  # no episode twice


def test_an_unwritable_results_path_is_a_clear_error(tmp_path):
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    with pytest.raises(ConfigError, match="cannot write results"):
        asyncio.run(run_eval(_spec(limit=1, budgets=("1",)), not_a_folder / "r.jsonl", progress=False))


def test_a_resume_with_another_configuration_is_refused_and_names_the_difference(tmp_path):
    data = tmp_path / "q.jsonl"
    data.write_text(MINI.read_text())
    out = tmp_path / "r.jsonl"

    def spec(max_tokens=256):
        return _spec(env_options={"data": str(data), "max_tokens": max_tokens}, limit=2, budgets=("1",))

    asyncio.run(run_eval(spec(), out, progress=False))
    header = json.loads(out.read_text().splitlines()[0])
    assert header["config"]["budgets"] == {"1": {"tool:search": 1, "tool:open": 1}}
    assert len(header["config"]["files"]["data"]) == 64  # the data file's SHA-256
    source = header["versions"].get("source")  # the hint names it where the source is a git checkout
    hint = rf".*checkout of source {source}" if source else ""
    with pytest.raises(ConfigError, match=rf"options.max_tokens: 256 -> 300{hint}.*--extend"):
        asyncio.run(run_eval(spec(300), out, progress=False))
    data.write_text(data.read_text().replace("Sunne", "Sunna", 1))
    with pytest.raises(ConfigError, match=r"files.data"):
        asyncio.run(run_eval(spec(), out, progress=False))
    extended = asyncio.run(run_eval(spec(), out, progress=False, allow_changes=True))
    assert extended.skipped == 4  # extended on purpose: the finished episodes stay


def test_a_changed_prompt_is_a_changed_configuration(tmp_path, monkeypatch):
    from budgetgraph.agents import prompts

    out = tmp_path / "r.jsonl"
    spec = _spec(limit=1, budgets=("1",))
    asyncio.run(run_eval(spec, out, progress=False))
    header = json.loads(out.read_text().splitlines()[0])
    assert set(header["config"]["prompts"]) >= {"prompts", "acting", "block"}
    monkeypatch.setattr(prompts, "ANSWER_NOW", prompts.ANSWER_NOW + " Be brief.")
    with pytest.raises(ConfigError, match=r"prompts.prompts: "):
        asyncio.run(run_eval(spec, out, progress=False))


def test_a_prompt_only_another_planner_reads_does_not_block_a_resume(tmp_path, monkeypatch):
    from budgetgraph.agents.bats import acting

    out = tmp_path / "r.jsonl"
    spec = _spec(limit=1, budgets=("1",), planners=("react",))
    asyncio.run(run_eval(spec, out, progress=False))
    bats_out = tmp_path / "b.jsonl"
    bats_spec = _spec(limit=1, budgets=("1",), planners=("bats",))
    asyncio.run(run_eval(bats_spec, bats_out, progress=False))
    name = next(k for k, v in vars(acting).items() if k.isupper() and isinstance(v, str))
    monkeypatch.setattr(acting, name, getattr(acting, name) + " Changed.")
    assert asyncio.run(run_eval(spec, out, progress=False)).skipped == 1  # react reads no BATS prompt
    with pytest.raises(ConfigError, match=r"prompts.acting: "):
        asyncio.run(run_eval(bats_spec, bats_out, progress=False))


def test_a_prompt_module_the_old_header_did_not_list_does_not_block_a_resume(tmp_path):
    out = tmp_path / "b.jsonl"
    spec = _spec(limit=1, budgets=("1",), planners=("bats",))
    asyncio.run(run_eval(spec, out, progress=False))
    lines = out.read_text().splitlines()
    header = json.loads(lines[0])
    del header["config"]["prompts"]["bats_wording"]  # written before that module existed
    out.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    assert asyncio.run(run_eval(spec, out, progress=False)).skipped == 1
    header["config"]["prompts"]["bats"] = "0" * 16  # a listed module whose texts changed still blocks
    out.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    with pytest.raises(ConfigError, match=r"prompts.bats: "):
        asyncio.run(run_eval(spec, out, progress=False))


def test_epochs_run_each_cell_k_times_with_recorded_seeds_and_resume(tmp_path):
    out = tmp_path / "r.jsonl"
    spec = _spec(limit=3, budgets=("1",), epochs=3, temperature=0.5, seed=4)
    first = asyncio.run(run_eval(spec, out, progress=False))
    assert first.total == 3 * 2 * 3 and first.ran == 18
    _, records = ResultsFile(out).read()
    assert sorted({(r["epoch"], r["seed"]) for r in records}) == [(0, 4000), (1, 4001), (2, 4002)]
    assert set(Counter((r["task_id"], r["planner"]) for r in records).values()) == {3}
    again = asyncio.run(run_eval(spec, out, progress=False))
    assert again.ran == 0 and again.skipped == 18  # every (task, planner, budget, epoch) is done
    with pytest.raises(ConfigError, match=r"sampling.temperature: 0.5 -> 0.9"):
        asyncio.run(
            run_eval(_spec(limit=3, budgets=("1",), epochs=3, temperature=0.9, seed=4), out, progress=False)
        )
    (row,) = [r for r in summarize(records) if r.planner == "react"]
    assert row.n == 9  # 3 tasks x 3 epochs; its interval is over the 3 tasks' means


def test_an_epochs_seed_and_temperature_reach_every_model_call():
    from budgetgraph import Agent
    from budgetgraph.envs.runner import episode_record

    model = ScriptedModel.qa_policy()
    model.record = True  # keep each request's settings
    env = HotpotQAEnv(MINI)
    task = env.tasks()[0]
    record = asyncio.run(episode_record(env, task, model, "scripted", "tracker", "2", 1, 4001, 0.7))
    assert (record["epoch"], record["seed"]) == (1, 4001) and model.requests
    assert all(s.get("seed") == 4001 and s.get("temperature") == 0.7 for _, _, s in model.requests)
    model.requests.clear()
    asyncio.run(Agent(model, [], "llm_calls=1").arun("q"))  # outside an episode: the agent's own settings
    assert model.requests and all(
        "seed" not in s and s.get("temperature") == 0.0 for _, _, s in model.requests
    )


def test_a_paired_comparison_with_epochs_pairs_tasks_not_runs():
    from budgetgraph.envs.report import compare

    records = []
    for task, (a, b) in {"t1": ([1, 1], [0, 0]), "t2": ([0, 1], [1, 1]), "t3": ([0, 0], [0, 1])}.items():
        for epoch in range(2):
            for planner, scores in (("react", a), ("tracker", b)):
                records.append(
                    {
                        "task_id": task,
                        "planner": planner,
                        "budget": "2",
                        "model": "m",
                        "epoch": epoch,
                        "scores": {"correct": scores[epoch]},
                    }
                )
    ((_, _, c),) = compare(records, "react", "tracker")
    assert c.n == 3 and c.difference == pytest.approx((-1 + 0.5 + 0.5) / 3)


def test_the_strategies_run_as_planner_labels_in_a_sweep_on_hotpotqa_and_costplan(tmp_path):
    """Turn control, Adaptive-Consistency, majority voting and SALE need no code of the environment's own."""
    labels = (
        "react[turn_cap=2]",
        "consistency[samples=4]",
        "majority[samples=3]",
        "sale[pool=scripted+scripted:0;pool_prices=0.05+0.36]",
    )
    out = tmp_path / "strategies.jsonl"
    summary = asyncio.run(run_eval(_spec(planners=labels, budgets=("3",), limit=2), out, progress=False))
    assert (summary.ran, summary.errors) == (8, 0)
    by = {r["planner"]: r for r in _episodes(out) if r["task_id"] == _episodes(out)[0]["task_id"]}
    assert by["react[turn_cap=2]"]["limits"]["turns"] == 2
    assert by["react[turn_cap=2]"]["usage"]["by_role"]["act"]["llm_calls"] <= 2
    assert 1 <= by["consistency[samples=4]"]["details"]["samples"] <= 4
    assert by["majority[samples=3]"]["details"]["samples"] == 3
    assert by["sale[pool=scripted+scripted:0;pool_prices=0.05+0.36]"]["details"]["winner"] in (
        "scripted",
        "scripted:0",
    )
    cost = tmp_path / "costplan.jsonl"
    spec = _spec(
        env="costplan",
        env_options={"tasks": 2},
        planners=("react[turn_cap=3]", "majority[samples=2]"),
        budgets=("x1.5",),
    )
    summary = asyncio.run(run_eval(spec, cost, progress=False))
    assert (summary.ran, summary.errors) == (4, 0)


def test_the_report_counts_bats_verdicts_and_success_precision():
    from rich.console import Console

    from budgetgraph.envs.report import verdict_table

    def rec(attempts, how, correct):
        return {
            "model": "m",
            "planner": "bats",
            "budget": "5",
            "scores": {"correct": correct},
            "details": {"attempts": attempts, "chosen": 0, "selected_by": how},
        }

    s = {"answer": "a", "decision": "SUCCESS", "verifier": "SUCCESS"}
    demoted = {"answer": "b", "decision": "PIVOT", "verifier": "CONTINUE"}
    records = [rec([s], "success", 1.0), rec([demoted, s], "success", 0.0), rec([demoted], "rank", 0.0)]
    console = Console(record=True, width=200)
    console.print(verdict_table(records))
    text = console.export_text()
    row = next(line for line in text.splitlines() if "bats" in line)
    cells = [c.strip() for c in row.split("│") if c.strip()]
    assert cells[3:] == ["3", "2 (2)", "2 (0)", "0 (2)", "rank 1, success 2", "1/2"]
    assert verdict_table([{"model": "m", "planner": "react", "budget": "5", "scores": {}}]) is None


def test_a_sweep_without_text_keeps_no_passage_or_question_and_still_resumes_and_reports(tmp_path):
    from budgetgraph.envs.results import strip_text

    full, bare = tmp_path / "full.jsonl", tmp_path / "bare.jsonl"
    asyncio.run(run_eval(_spec(limit=4), full, progress=False))
    asyncio.run(run_eval(_spec(limit=4, keep_text=False), bare, progress=False))
    items = [json.loads(line) for line in MINI.read_text().splitlines()]
    texts = [i["question"] for i in items] + [s.strip() for i in items for _, ss in i["context"] for s in ss]
    written = bare.read_text()
    kept = [t for t in texts if len(t) > 20 and t in written]
    assert kept == [], f"task text left in the stripped file: {kept[:3]}"
    assert any(t in full.read_text() for t in texts)  # the check can fail: the full file has them
    episodes = _episodes(bare)
    assert len(episodes) == 16 and all("transcript" not in r and r["text_stripped"] for r in episodes)
    assert all(r["gold"].startswith("sha256 ") for r in episodes)
    cells = lambda rows: sorted((r.planner, r.budget, r.n, r.accuracy, r.tokens) for r in rows)  # noqa: E731
    assert cells(summarize(episodes)) == cells(summarize(_episodes(full)))
    again = asyncio.run(run_eval(_spec(limit=4, keep_text=False), bare, progress=False))
    assert (again.ran, again.skipped) == (0, 16)
    long = strip_text({"answer": "x" * 81, "details": {"v": ["SUCCESS", "y" * 200]}, "transcript": []})
    assert long["answer"].startswith("[81 chars, sha256 ") and long["details"]["v"][0] == "SUCCESS"
    assert "transcript" not in long
