"""Summaries of a results file: accuracy, spend, cost-of-pass and E3 per (model, planner, budget)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any, TypeVar

from .stats import FEW_TASKS, Comparison, accuracy_interval, compare_paired, standard_error

_R = TypeVar("_R", bound=Mapping[str, Any])

__all__ = [
    "Row",
    "category_table",
    "compare",
    "estimate_rows",
    "estimate_table",
    "render_comparisons",
    "render_compact",
    "paired",
    "pareto_front",
    "render_rows",
    "role_mismatches",
    "rows_as_dicts",
    "summarize",
    "verdict_table",
]


@dataclass(frozen=True, slots=True)
class Row:
    """One (model, planner, budget) cell of a sweep."""

    model: str
    planner: str
    budget: str
    n: int
    accuracy: float
    em: float | None
    f1: float | None
    tool_calls: Mapping[str, float]
    tokens: float
    cost: float
    errors: int
    extra: Mapping[str, float]
    se: float = 0.0
    """The standard error of the accuracy."""
    ci: tuple[float, float] = (math.nan, math.nan)
    """A 95% interval of the accuracy over tasks (Wilson for pass/fail, else the bootstrap)."""
    tasks: int = 0
    """Distinct tasks in the cell (with epochs, fewer than ``n``): the interval's sample size."""
    turns: float | None = None
    """Mean acting model calls (turns, as turn control counts them) over the episodes that record roles."""

    @property
    def cost_of_pass(self) -> float:
        """Mean unified cost per correct answer (infinite when nothing is correct)."""
        return self.cost / self.accuracy if self.accuracy > 0 else math.inf

    @property
    def e3(self) -> float:
        """Accuracy squared over mean tokens."""
        return self.accuracy**2 / self.tokens if self.tokens > 0 else 0.0


def _budget_order(label: str) -> tuple[int, float, str]:
    return (0, float(label), "") if label.isdigit() else (1, 0.0, label)


def _mean(values: Iterable[float]) -> float | None:
    vals = list(values)
    return fmean(vals) if vals else None


def _cell(r: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(r["model"]), str(r["planner"]), str(r["budget"]))


def paired(records: Sequence[_R]) -> list[_R]:
    """The episodes of the tasks that every (model, planner, budget) cell has finished.

    A partial or resumed sweep can hold different tasks per cell; compare cells on the tasks they share.
    """
    tasks: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for r in records:
        tasks[_cell(r)].add(str(r["task_id"]))
    shared = set.intersection(*tasks.values()) if tasks else set()
    return [r for r in records if str(r["task_id"]) in shared]


def _per_task(records: Iterable[Mapping[str, Any]]) -> list[float]:
    """Accuracy per task, averaged over its epochs (one value per task when there is one epoch)."""
    by_task: dict[str, list[float]] = defaultdict(list)
    for r in records:
        by_task[str(r["task_id"])].append(float((r.get("scores") or {}).get("correct", 0.0)))
    return [fmean(v) for v in by_task.values()]


def _row(table: Any, *cells: str) -> None:
    """Add a row of plain text: a label such as ``majority[samples=3]`` is not read as rich markup."""
    from rich.text import Text

    table.add_row(*(Text(c) for c in cells))


def summarize(records: Iterable[Mapping[str, Any]]) -> list[Row]:
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        groups[_cell(r)].append(r)
    rows = []
    for (model, planner, budget), recs in groups.items():
        tools: set[str] = set()
        for r in recs:
            tools.update((r.get("usage") or {}).get("tool_calls", {}))
        usage = [r.get("usage") or {} for r in recs]
        scores = [r.get("scores") or {} for r in recs]
        extra_keys = sorted({k for s in scores for k in s} - {"correct", "em", "f1"})
        correct = [float(s.get("correct", 0.0)) for s in scores]
        per_task = _per_task(recs)  # with epochs, a task's runs are one sample: intervals over tasks
        rows.append(
            Row(
                model=model,
                planner=planner,
                budget=budget,
                n=len(recs),
                accuracy=fmean(correct),
                em=_mean(float(s["em"]) for s in scores if "em" in s),
                f1=_mean(float(s["f1"]) for s in scores if "f1" in s),
                tool_calls={
                    t: fmean(float(u.get("tool_calls", {}).get(t, 0)) for u in usage) for t in sorted(tools)
                },
                tokens=fmean(float(u.get("total_tokens", 0)) for u in usage),
                cost=fmean(float(u.get("usd", 0.0)) for u in usage),
                errors=sum(1 for r in recs if r.get("error")),
                extra={k: fmean(float(s[k]) for s in scores if k in s) for k in extra_keys},
                se=standard_error(per_task),
                ci=accuracy_interval(per_task),
                tasks=len(per_task),
                turns=_mean(
                    float((u["by_role"].get("act") or {}).get("llm_calls", 0))
                    for u in usage
                    if u.get("by_role")
                ),
            )
        )
    rows.sort(key=lambda r: (r.model, r.planner, _budget_order(r.budget)))
    return rows


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats (cost no higher and accuracy no lower, one strictly)."""
    front = []
    for i, (c, a) in enumerate(points):
        dominated = any(
            (c2 <= c and a2 >= a) and (c2 < c or a2 > a) for j, (c2, a2) in enumerate(points) if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def _interval(r: Row) -> str:
    """The interval, marked when the cell has too few tasks for it to mean much."""
    if r.ci[0] != r.ci[0]:
        return "-"
    return f"{r.ci[0]:.2f}-{r.ci[1]:.2f}" + ("*" if r.tasks < FEW_TASKS else "")


def _caption(rows: Sequence[Row]) -> str | None:
    few = [r for r in rows if r.tasks < FEW_TASKS]
    if not few:
        return None
    return (
        f"* under {FEW_TASKS} tasks: an interval this wide cannot tell planners apart; run more tasks "
        "(--limit) before comparing"
    )


def render_compact(rows: Sequence[Row]) -> Any:
    """The summary in 80 columns: the cell, accuracy with its interval, tool units, tokens, cost, cost-of-pass
    (``--json`` or a wide terminal has every column)."""
    from rich.table import Table

    models = {r.model for r in rows}
    table = Table(title="accuracy vs unified cost", show_lines=False, padding=(0, 1), caption=_caption(rows))
    heads = ([] if len(models) == 1 else ["model"]) + [
        "planner",
        "B",
        "n",
        "acc",
        "95% CI",
        "tools",
        "tokens",
        "cost $",
        "$/pass",
    ]
    for h in heads:
        table.add_column(h, justify="left" if h in ("model", "planner", "B") else "right", no_wrap=True)
    for r in rows:
        cells = [] if len(models) == 1 else [r.model]
        _row(
            table,
            *cells,
            r.planner,
            r.budget,
            str(r.n),
            _fmt(r.accuracy),
            _interval(r),
            f"{sum(r.tool_calls.values()):.1f}",
            f"{r.tokens:.0f}",
            _fmt(r.cost, 4),
            _fmt(r.cost_of_pass, 4),
        )
    return table


def render_rows(rows: Sequence[Row], width: int | None = None) -> Any:
    """A rich Table of the summary rows: every column where it fits in ``width`` unwrapped, else the compact
    one."""
    from rich.console import Console

    table = _wide(rows)
    if width is not None and Console(width=10_000).measure(table).maximum > width:
        return render_compact(rows)
    return table


def _wide(rows: Sequence[Row]) -> Any:
    from rich.table import Table

    table = Table(title="accuracy vs unified cost", show_lines=False, caption=_caption(rows))
    extra_keys = sorted({k for r in rows for k in r.extra})
    headers = [
        "model",
        "planner",
        "budget",
        "n",
        "acc",
        "95% CI",
        "EM",
        "F1",
        *extra_keys,
        "tool calls (mean)",
        "turns",
        "tokens",
        "cost $",
        "cost-of-pass $",
        "E3",
        "errors",
    ]
    for h in headers:
        table.add_column(
            h, justify="left" if h in ("model", "planner", "budget", "tool calls (mean)") else "right"
        )
    for r in rows:
        calls = ", ".join(f"{k} {v:.2f}" for k, v in r.tool_calls.items()) or "-"
        if len(r.tool_calls) > 4:  # many tools (costplan): the total, not a wall of names
            calls = f"{sum(r.tool_calls.values()):.2f} over {len(r.tool_calls)} tools"
        _row(
            table,
            r.model,
            r.planner,
            r.budget,
            str(r.n),
            _fmt(r.accuracy),
            _interval(r),
            _fmt(r.em),
            _fmt(r.f1),
            *(_fmt(r.extra.get(k)) for k in extra_keys),
            calls,
            _fmt(r.turns, 1),
            f"{r.tokens:.0f}",
            _fmt(r.cost, 5),
            _fmt(r.cost_of_pass, 5),
            f"{r.e3:.2e}",
            str(r.errors),
        )
    return table


def category_table(records: Iterable[Mapping[str, Any]]) -> Any | None:
    """Accuracy per category (BFCL) and per (model, planner, budget), or None when records have none."""
    from rich.table import Table

    cells: dict[tuple[str, str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if "category" in r:
            key = (str(r["model"]), str(r["planner"]), str(r["budget"]))
            cells[key][str(r["category"])].append(float((r.get("scores") or {}).get("correct", 0.0)))
    if not cells:
        return None
    categories = sorted({c for per in cells.values() for c in per})
    table = Table(title="accuracy per category (n)")
    for h in ["model", "planner", "budget", *categories, "overall"]:
        table.add_column(h)
    for (model, planner, budget), per in sorted(cells.items()):
        values = [v for vs in per.values() for v in vs]
        _row(
            table,
            model,
            planner,
            budget,
            *(f"{fmean(per[c]):.3f} ({len(per[c])})" if per.get(c) else "-" for c in categories),
            f"{fmean(values):.3f} ({len(values)})",
        )
    return table


def verdict_table(records: Iterable[Mapping[str, Any]]) -> Any | None:
    """BATS's verdicts per (model, planner, budget): the verifier's own SUCCESS / CONTINUE / PIVOT counts and
    after the guards, how answers were chosen, and SUCCESS precision (the share of episodes that ended on a
    SUCCESS whose answer was correct); None when no record has attempts."""
    from rich.table import Table

    cells: dict[tuple[str, str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        if isinstance((r.get("details") or {}).get("attempts"), list):
            cells[(str(r["model"]), str(r["planner"]), str(r["budget"]))].append(r)
    if not cells:
        return None
    table = Table(title="BATS verdicts: the verifier's own (after the guards)")
    for h in [
        "model",
        "planner",
        "budget",
        "n",
        "SUCCESS",
        "CONTINUE",
        "PIVOT",
        "chosen by",
        "SUCCESS precision",
    ]:
        table.add_column(h)
    for (model, planner, budget), rs in sorted(cells.items()):
        attempts = [a for r in rs for a in r["details"]["attempts"]]
        counts = []
        for d in ("SUCCESS", "CONTINUE", "PIVOT"):
            own = sum(1 for a in attempts if a.get("verifier") == d)
            final = sum(1 for a in attempts if a.get("decision") == d)
            counts.append(f"{own} ({final})")
        how: dict[str, int] = defaultdict(int)
        for r in rs:
            how[str(r["details"].get("selected_by"))] += 1
        ended = [r for r in rs if r["details"].get("selected_by") == "success"]
        right = sum(1 for r in ended if float((r.get("scores") or {}).get("correct", 0.0)) >= 1)
        _row(
            table,
            model,
            planner,
            budget,
            str(len(rs)),
            *counts,
            ", ".join(f"{k} {v}" for k, v in sorted(how.items())),
            f"{right}/{len(ended)}" if ended else "-",
        )
    return table


def estimate_rows(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per (model, planner, budget): early stops, the tokens of failing episodes, and the calibration of the
    budget-aware stop's first estimate in each episode (estimated calls still needed against the calls made
    after it, on episodes it did not stop); empty when no episode holds estimates."""
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        groups[_cell(r)].append(r)
    if not any((r.get("details") or {}).get("estimates") for rs in groups.values() for r in rs):
        return []
    out = []
    for (model, planner, budget), rs in sorted(groups.items()):
        failing = [r for r in rs if float((r.get("scores") or {}).get("correct", 0.0)) < 1]
        early = [r for r in rs if str(r.get("stop_reason", "")).startswith("stopped_early")]
        pairs = []
        for r in rs:
            estimates = (r.get("details") or {}).get("estimates") or []
            first = next((e for e in estimates if isinstance(e.get("need"), dict)), None)
            if first is None or r in early:
                continue
            final = (r.get("usage") or {}).get("tool_calls", {})
            after = sum(max(0, int(final.get(t, 0)) - int(n)) for t, n in (first.get("used") or {}).items())
            pairs.append((sum(int(v) for v in first["need"].values()), after))
        row: dict[str, Any] = {
            "model": model,
            "planner": planner,
            "budget": budget,
            "n": len(rs),
            "with_estimates": sum(1 for r in rs if (r.get("details") or {}).get("estimates")),
            "stopped_early": len(early),
            "failing": len(failing),
            "failing_tokens": _mean(float((r.get("usage") or {}).get("total_tokens", 0)) for r in failing),
            "calibrated_on": len(pairs),
            "estimated": _mean(float(e) for e, _ in pairs),
            "used_after": _mean(float(a) for _, a in pairs),
            "abs_error": _mean(float(abs(e - a)) for e, a in pairs),
            "under": _mean(float(e < a) for e, a in pairs),
        }
        out.append(row)
    return out


def estimate_table(records: Iterable[Mapping[str, Any]]) -> Any | None:
    """The budget-aware stop's table (see :func:`estimate_rows`); None when no episode holds estimates."""
    from rich.table import Table

    rows = estimate_rows(records)
    if not rows:
        return None
    table = Table(
        title="budget-aware stop: early stops, tokens on failing episodes, and the first estimate's calibration",
        caption="calibration: calls the agent said it still needed against the calls it made after saying so, "
        "on episodes it did not stop",
    )
    heads = ["planner", "B", "n", "estimated in", "stopped early", "failing", "tokens / failing"]
    heads += ["calibrated on", "estimated", "used after", "|error|", "under-estimates"]
    for h in heads:
        table.add_column(h, justify="left" if h in ("planner", "B") else "right")
    for r in rows:
        _row(
            table,
            r["planner"],
            r["budget"],
            str(r["n"]),
            str(r["with_estimates"]),
            str(r["stopped_early"]),
            str(r["failing"]),
            _fmt(r["failing_tokens"], 0),
            str(r["calibrated_on"]),
            _fmt(r["estimated"], 2),
            _fmt(r["used_after"], 2),
            _fmt(r["abs_error"], 2),
            _fmt(r["under"], 2),
        )
    return table


def role_mismatches(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Task ids whose per-role usage does not add up to the episode's totals (should be none)."""
    bad = []
    for r in records:
        usage = r.get("usage") or {}
        roles = usage.get("by_role") or {}
        if not roles:
            continue
        for key in ("input_tokens", "output_tokens", "llm_calls"):
            if sum(int(v.get(key, 0)) for v in roles.values()) != int(usage.get(key, 0)):
                bad.append(str(r.get("task_id")))
                break
    return bad


def rows_as_dicts(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The summary rows as plain data (``report --json`` / ``--csv``)."""
    out = []
    for r in rows:
        out.append(
            {
                "model": r.model,
                "planner": r.planner,
                "budget": r.budget,
                "n": r.n,
                "tasks": r.tasks,
                "accuracy": r.accuracy,
                "accuracy_se": r.se,
                "accuracy_ci_low": r.ci[0],
                "accuracy_ci_high": r.ci[1],
                "em": r.em,
                "f1": r.f1,
                **{f"tool_calls.{k}": v for k, v in r.tool_calls.items()},
                "turns": r.turns,
                "tokens": r.tokens,
                "cost_usd": r.cost,
                "cost_of_pass_usd": None if math.isinf(r.cost_of_pass) else r.cost_of_pass,
                "e3": r.e3,
                "errors": r.errors,
                **dict(r.extra),
            }
        )
    return out


def compare(records: Iterable[Mapping[str, Any]], a: str, b: str) -> list[tuple[str, str, Comparison]]:
    """Planner ``b`` against ``a`` per (model, budget), paired on the tasks both finished."""
    runs: dict[tuple[str, str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        runs[_cell(r)][str(r["task_id"])].append(float((r.get("scores") or {}).get("correct", 0.0)))
    # with epochs, a task's score is its mean over epochs: the pairs are tasks, not runs
    scores = {cell: {t: fmean(v) for t, v in tasks.items()} for cell, tasks in runs.items()}
    out = []
    for model, budget in sorted({(m, bu) for m, _, bu in scores}, key=lambda x: (x[0], _budget_order(x[1]))):
        if (model, a, budget) in scores and (model, b, budget) in scores:
            out.append(
                (
                    model,
                    budget,
                    compare_paired(scores[(model, a, budget)], scores[(model, b, budget)], (a, b)),
                )
            )
    return out


def render_comparisons(found: Sequence[tuple[str, str, Comparison]]) -> Any:
    from rich.table import Table

    table = Table(title="paired comparison (accuracy, B - A, on the tasks both finished)")
    for h in ("model", "budget", "A", "B", "n", "B - A", "95% CI", "p", "B wins / loses", "verdict"):
        table.add_column(h)
    for model, budget, c in found:
        _row(
            table,
            model,
            budget,
            c.a,
            c.b,
            str(c.n),
            f"{c.difference:+.3f}",
            f"{c.low:+.3f} to {c.high:+.3f}",
            f"{c.p_value:.3f}",
            f"{c.wins} / {c.losses}",
            "within noise" if c.within_noise else ("B better" if c.difference > 0 else "A better"),
        )
    return table
