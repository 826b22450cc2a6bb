"""Statistics of the report: standard errors, bootstrap intervals, the paired comparison, and the CLI."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys

import pytest
from conftest import MINI

from budgetgraph.envs import EvalSpec, run_eval
from budgetgraph.envs.stats import (
    accuracy_interval,
    bootstrap_ci,
    compare_paired,
    standard_error,
    wilson_interval,
)


def test_standard_error_and_a_seeded_bootstrap_interval():
    values = [1.0] * 6 + [0.0] * 24  # accuracy 0.2 at n = 30
    assert standard_error(values) == pytest.approx((0.2 * 0.8 / 29) ** 0.5 * (30 / 30) ** 0.5, rel=0.02)
    low, high = bootstrap_ci(values)
    assert low < 0.2 < high and 0.05 < low and high < 0.4
    assert bootstrap_ci(values) == (low, high)  # seeded: the same report twice


def test_a_small_all_correct_cell_gets_an_interval_that_is_not_a_certainty():
    low, high = accuracy_interval([1.0, 1.0])  # 2 of 2: the bootstrap would say 1.00-1.00
    assert high == 1.0 and 0.30 < low < 0.40
    assert wilson_interval(6, 30) == pytest.approx((0.095, 0.373), abs=0.002)
    assert accuracy_interval([0.5, 1.0, 0.0]) == bootstrap_ci([0.5, 1.0, 0.0])  # graded: the bootstrap


def test_a_paired_comparison_separates_a_real_difference_from_noise():
    same = compare_paired(
        {str(i): float(i % 2) for i in range(30)}, {str(i): float(i % 2) for i in range(30)}
    )
    assert same.difference == 0 and same.within_noise and same.p_value == 1.0
    a = {str(i): 0.0 for i in range(20)}
    b = {str(i): 1.0 if i < 15 else 0.0 for i in range(20)}
    real = compare_paired(a, b, ("react", "tracker"))
    assert real.difference == pytest.approx(0.75) and not real.within_noise and real.p_value < 0.001
    assert "tracker is better" in real.verdict() and (real.wins, real.losses) == (15, 0)
    one = compare_paired({"1": 0.0, "2": 1.0, "3": 0.0}, {"1": 1.0, "2": 1.0, "3": 0.0})
    assert one.within_noise and one.p_value == pytest.approx(1.0)  # exact: 1 flip of 2 sign patterns
    assert compare_paired({"1": 1.0}, {"2": 1.0}).n == 0  # no shared task


def test_too_few_differing_tasks_are_noise_even_when_the_bootstrap_excludes_0():
    a = {str(i): 0.0 for i in range(30)}
    b = {str(i): 1.0 if i < 4 else 0.0 for i in range(30)}  # 4 wins, 0 losses, 26 ties
    few = compare_paired(a, b, ("react", "tracker"))
    assert few.low > 0 and few.p_value == pytest.approx(0.125)  # exact: 1 of 8 sign patterns each side
    assert few.within_noise and "too few to tell" in few.verdict() and "is better" not in few.verdict()
    b.update({str(i): 1.0 for i in range(4, 8)})  # 8 wins, 0 losses: p = 2 / 256
    more = compare_paired(a, b, ("react", "tracker"))
    assert not more.within_noise and more.p_value == pytest.approx(2 / 256)
    assert "tracker is better" in more.verdict()


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("stats") / "r.jsonl"
    spec = EvalSpec(
        env="hotpotqa",
        env_options={"data": str(MINI)},
        model="scripted",
        planners=("react", "tracker"),
        budgets=("1", "3"),
        limit=16,
    )
    asyncio.run(run_eval(spec, out, progress=False))
    return out


def _report(out, *extra):
    cmd = [sys.executable, "-m", "budgetgraph.cli", "report", str(out), *extra]
    env = {**os.environ, "COLUMNS": "200"}  # a wide log, whatever the terminal running the tests
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def test_report_compare_prints_the_paired_difference_with_its_interval(sweep):
    proc = _report(sweep, "--compare", "react,tracker")
    assert proc.returncode == 0, proc.stderr
    assert "paired comparison" in proc.stdout and "95% CI" in proc.stdout
    assert "budget 1:" in proc.stdout and ("within noise" in proc.stdout or "is better" in proc.stdout)
    bad = _report(sweep, "--compare", "react")
    assert bad.returncode == 2 and "two planners" in bad.stderr


def test_report_json_and_csv(sweep):
    rows = json.loads(_report(sweep, "--json").stdout)
    assert (
        len(rows) == 4
        and {"accuracy", "accuracy_ci_low", "accuracy_ci_high", "accuracy_se"} <= rows[0].keys()
    )
    assert all(r["accuracy_ci_low"] <= r["accuracy"] <= r["accuracy_ci_high"] for r in rows)
    episodes = [json.loads(line) for line in sweep.read_text().splitlines()]
    acts = [
        e["usage"]["by_role"]["act"]["llm_calls"]
        for e in episodes
        if e.get("type") == "episode"
        and e["planner"] == rows[0]["planner"]
        and e["budget"] == rows[0]["budget"]
    ]
    assert rows[0]["turns"] == pytest.approx(sum(acts) / len(acts)) and rows[0]["turns"] >= 1  # acting calls
    table = list(csv.DictReader(io.StringIO(_report(sweep, "--csv").stdout)))
    assert len(table) == 4 and table[0]["planner"] == "react"


def test_results_become_inspect_logs_that_inspect_reads(sweep, tmp_path):
    pytest.importorskip("inspect_ai", reason="inspect logs need pip install 'budgetgraph[inspect]'")
    from inspect_ai.log import read_eval_log

    folder = tmp_path / "logs"
    proc = _report(sweep, "--inspect", str(folder))
    assert proc.returncode == 0 and "4 inspect logs written" in proc.stderr, proc.stderr
    logs = sorted(folder.glob("*.eval"))
    assert len(logs) == 4
    log = read_eval_log(str(logs[0]))
    assert (
        log.status == "success"
        and log.eval.solver in ("react", "tracker")
        and log.eval.task == "budgetgraph/hotpotqa"
    )
    sample = log.samples[0]
    assert sample.scores["correct"].value in (0.0, 1.0) and sample.metadata["tool_calls"]
    assert sample.metadata["budget_limits"] and sample.model_usage["scripted"].total_tokens > 0
    assert (
        any(m.role == "tool" for m in sample.messages)
        and log.results.scores[0].metrics["accuracy"].value >= 0
    )
    budget_stops = [s for s in log.samples if s.metadata["stop_reason"].startswith("budget_exhausted")]
    assert all(s.limit is not None for s in budget_stops)


def test_the_report_fits_80_columns(sweep):
    from rich.console import Console

    from budgetgraph.envs.report import render_rows, summarize

    records = [json.loads(x) for x in sweep.read_text().splitlines() if '"episode"' in x]
    console = Console(width=80, record=True)
    console.print(render_rows(summarize(records), console.width))
    text = console.export_text()
    assert "…" not in text and all(len(line) <= 80 for line in text.splitlines())
    assert "tracker" in text and "95% CI" in text


def test_the_wide_table_only_where_it_fits_unwrapped(sweep):
    from rich.console import Console

    from budgetgraph.envs.report import render_rows, summarize

    records = [json.loads(x) for x in sweep.read_text().splitlines() if '"episode"' in x]
    rows = summarize(records)
    for width, wide in ((120, False), (150, False), (260, True)):
        console = Console(width=width, record=True)
        console.print(render_rows(rows, width))
        text = console.export_text()
        assert ("cost-of-pass $" in text) is wide, width
        assert "…" not in text and all(len(line) <= width for line in text.splitlines())
        table = [line for line in text.splitlines() if line.startswith("│")]
        assert len(table) == len(rows), f"rows wrap at {width} columns"


def test_a_report_piped_honours_columns_and_marks_too_few_tasks(sweep, tmp_path):
    from typer.testing import CliRunner

    from budgetgraph.cli import app

    lines = sweep.read_text().splitlines()
    few = tmp_path / "few.jsonl"
    kept = [line for line in lines[1:] if json.loads(line)["task_id"] in {json.loads(lines[1])["task_id"]}]
    few.write_text("\n".join([lines[0], *kept]) + "\n")
    for columns, width in (("100", 100), ("300", 300)):
        result = CliRunner().invoke(app, ["report", str(few)], env={"COLUMNS": columns})
        assert result.exit_code == 0, result.output
        assert ("cost-of-pass $" in result.output) is (width == 300)
        assert max(len(line) for line in result.output.splitlines()) <= width
        assert "*" in result.output and "under 10 tasks" in result.output
        assert "add up to the episode's totals" in result.output
    enough = CliRunner().invoke(app, ["report", str(sweep)], env={"COLUMNS": "100"})
    assert "under 10 tasks" not in enough.output


def test_a_planner_label_with_options_is_printed_whole(sweep):
    from rich.console import Console

    from budgetgraph.envs.report import render_rows, summarize

    records = [json.loads(x) for x in sweep.read_text().splitlines() if '"episode"' in x]
    for r in records:
        r["planner"] = f"{r['planner']}[samples=3]"  # rich would read "[samples=3]" as markup and drop it
    for width in (80, 200):
        console = Console(width=width, record=True)
        console.print(render_rows(summarize(records), width))
        assert "react[samples=3]" in console.export_text()


def test_a_report_over_two_files_compares_sweeps_run_side_by_side(sweep, tmp_path):
    lines = sweep.read_text().splitlines()
    header = lines[0]
    episodes = [json.loads(line) for line in lines[1:]]
    react, tracker = tmp_path / "react.jsonl", tmp_path / "tracker.jsonl"
    react.write_text(
        "\n".join([header, *(json.dumps(e) for e in episodes if e["planner"] == "react")]) + "\n"
    )
    tracker.write_text(
        "\n".join([header, *(json.dumps(e) for e in episodes if e["planner"] == "tracker")]) + "\n"
    )
    whole = json.loads(_report(sweep, "--json").stdout)
    both = _report(react, tracker, "--json")
    assert both.returncode == 0, both.stderr
    assert json.loads(both.stdout) == whole
    assert len(json.loads(_report(react, "--json").stdout)) == 2
    compared = _report(react, tracker, "--compare", "react,tracker")
    assert compared.returncode == 0 and "budget 1:" in compared.stdout, compared.stderr
    other = json.loads(header)
    other["env_info"] = {**other["env_info"], "data": "another.jsonl"}
    alien = tmp_path / "alien.jsonl"
    alien.write_text(json.dumps(other) + "\n" + lines[1] + "\n")
    refused = _report(react, alien)
    assert refused.returncode != 0 and "another environment or data" in refused.stderr
    missing = _report(react, tmp_path / "none.jsonl")
    assert missing.returncode != 0 and "no results file" in missing.stderr


def test_the_estimate_table_reports_early_stops_failing_tokens_and_calibration():
    from budgetgraph.envs.report import estimate_rows

    def episode(task, planner, correct, tokens, stop, estimates, final):
        return {
            "task_id": task,
            "model": "m",
            "planner": planner,
            "budget": "3",
            "scores": {"correct": correct},
            "usage": {"total_tokens": tokens, "tool_calls": final},
            "stop_reason": stop,
            "details": {"estimates": estimates} if estimates else {},
        }

    first = {"need": {"search": 1, "open": 2}, "used": {"search": 1, "open": 0}, "remaining": {}}
    records = [
        episode("a", "tracker", 1.0, 1000, "answered", [first], {"search": 2, "open": 1}),  # said 3, made 2
        episode("b", "tracker", 0.0, 3000, "answered", [first], {"search": 3, "open": 2}),  # said 3, made 4
        episode(
            "c", "tracker", 0.0, 500, "stopped_early", [{"need": "infeasible", "used": {}}], {"search": 1}
        ),
        episode("a", "react", 0.0, 2000, "answered", None, {"search": 3}),
    ]
    rows = {r["planner"]: r for r in estimate_rows(records)}
    tracker, react = rows["tracker"], rows["react"]
    assert tracker["stopped_early"] == 1 and tracker["failing"] == 2 and tracker["failing_tokens"] == 1750
    assert tracker["calibrated_on"] == 2 and tracker["estimated"] == 3 and tracker["used_after"] == 3
    assert tracker["abs_error"] == 1 and tracker["under"] == 0.5
    assert react["with_estimates"] == 0 and react["failing_tokens"] == 2000  # the side-by-side baseline
    assert estimate_rows(records[3:]) == []  # no estimates anywhere: no table
