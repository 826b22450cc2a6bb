"""``budgetgraph report`` and ``view``: a results file as a table, a plot and a page."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import BudgetgraphError
from .common import (
    _error,
    _out,
    app,
    console,
)


@app.command()
def report(
    results: Annotated[
        list[Path],
        typer.Argument(
            help="Results JSONL files written by 'budgetgraph eval' on one environment; several are reported as one."
        ),
    ],
    plot: Annotated[
        Path | None, typer.Option(help="Write the cost-accuracy Pareto plot to this PNG.")
    ] = None,
    x: Annotated[str, typer.Option(help="Plot x axis: cost | tokens.")] = "cost",
    paired: Annotated[
        bool, typer.Option("--paired", help="Only the tasks that every planner and budget has finished.")
    ] = False,
    compare: Annotated[
        str | None,
        typer.Option(help="A,B: planner B against A per budget, paired on shared tasks (interval, p-value)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary rows as JSON.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print the summary rows as CSV.")] = False,
    inspect_logs: Annotated[
        Path | None,
        typer.Option("--inspect", help="Also write inspect_ai eval logs (one per cell) into this folder."),
    ] = None,
    mixed: Annotated[
        bool,
        typer.Option(
            "--mixed",
            help="Report files run under different configurations (model, options, prices, sampling) together.",
        ),
    ] = False,
) -> None:
    """Print accuracy (with its 95% interval), EM, F1, tool calls, tokens, cost, cost-of-pass and E3 per
    planner and budget; --compare A,B tells a difference from noise."""
    from ..envs.report import (
        category_table,
        estimate_table,
        render_rows,
        role_mismatches,
        rows_as_dicts,
        summarize,
        verdict_table,
    )

    named = ", ".join(str(p) for p in results)
    header, records = _load_results(results, paired, mixed)
    rows = summarize(records)
    if inspect_logs is not None:
        from ..envs.inspect_log import write_inspect_logs

        try:
            written = write_inspect_logs(header, records, inspect_logs)
        except BudgetgraphError as exc:
            raise _error(exc) from None
        console.print(
            f"{len(written)} inspect logs written to {escape(str(inspect_logs))} (inspect view --log-dir ...)"
        )
    if as_json or as_csv:
        _write_rows(rows_as_dicts(rows), as_json)
        return
    out = _out()
    if compare:
        _print_comparison(out, records, compare, named)
        return
    out.print(render_rows(rows, out.width))
    if not paired and len({r.n for r in rows}) > 1:
        out.print(
            f"cells hold {min(r.n for r in rows)} to {max(r.n for r in rows)} episodes: "
            "--paired compares them on the tasks they all finished"
        )
    if (per_category := category_table(records)) is not None:
        out.print(per_category)
    if (verdicts := verdict_table(records)) is not None:
        out.print(verdicts)
    if (estimates := estimate_table(records)) is not None:
        out.print(estimates)
    with_roles = [r for r in records if (r.get("usage") or {}).get("by_role")]
    if with_roles:
        bad = role_mismatches(with_roles)
        if bad:
            out.print(
                f"[red]check failed:[/] in {len(bad)} of {len(with_roles)} episodes the tokens and calls of the "
                "steps (planning, acting, verifying, selecting, answering) do not add up to the episode's totals: "
                f"{escape(', '.join(bad[:5]))} (a metering bug: please report it)"
            )
        else:
            out.print(
                f"[dim]check: in all {len(with_roles)} episodes the tokens and calls of the steps (planning, "
                "acting, verifying, selecting, answering) add up to the episode's totals[/]"
            )
    if plot:
        _plot(out, rows, plot, x)


def _load_results(
    results: list[Path], paired: bool, mixed: bool = False
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The header and episodes of one or more results files; with ``paired``, only tasks every cell finished."""
    from ..envs.report import paired as shared_tasks
    from ..envs.results import read_results

    for path in results:
        if not path.exists():
            raise _error(f"no results file at {path}")
    named = ", ".join(str(p) for p in results)
    try:
        header, records = read_results(results, mixed=mixed)
    except BudgetgraphError as exc:
        raise _error(exc) from None
    if not records:
        raise _error(f"{named} holds no finished episodes yet")
    if paired:
        records = shared_tasks(records)
        if not records:
            raise _error(f"no task is finished in every cell of {named}")
    return header, records


def _plot(out: Console, rows: list[Any], plot: Path, x: str) -> None:
    from ..envs.plot import plot_pareto

    axis = x
    if axis == "cost" and all(r.cost == 0 for r in rows):
        console.print("[yellow]every cost is 0 (free model and tools): plotting against tokens instead[/]")
        axis = "tokens"
    try:
        path = plot_pareto(rows, plot, x=axis)
    except BudgetgraphError as exc:
        raise _error(exc) from None
    out.print(f"plot written to {escape(str(path))}")


def _write_rows(data: list[dict[str, object]], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    import csv

    fields = list(dict.fromkeys(k for row in data for k in row))
    writer = csv.DictWriter(sys.stdout, fieldnames=fields)
    writer.writeheader()
    writer.writerows(data)


def _print_comparison(out: Console, records: list[dict[str, object]], compare: str, results: str) -> None:
    from ..envs.report import compare as compare_cells
    from ..envs.report import render_comparisons

    names = [p.strip() for p in compare.split(",") if p.strip()]
    if len(names) != 2:
        raise _error(f"--compare takes two planners, e.g. --compare react,tracker (got {compare!r})")
    found = compare_cells(records, names[0], names[1])
    if not found:
        raise _error(f"{results} has no budget where both {names[0]} and {names[1]} ran")
    out.print(render_comparisons(found))
    for model, budget, c in found:
        out.print(f"{escape(model)} budget {escape(budget)}: {escape(c.verdict())}")


@app.command()
def view(
    results: Annotated[
        list[Path], typer.Argument(help="One or more results JSONL files from 'budgetgraph eval'.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = Path("results.html"),
) -> None:
    """Write one self-contained HTML page (it opens from disk, offline): the cost-accuracy plot with 95%
    intervals, the planner x budget table, and each episode's budget timeline and transcript."""
    from ..envs.results import ResultsFile
    from ..envs.view import render_view

    files = []
    for path in results:
        if not path.exists():
            raise _error(f"no results file at {path}")
        try:
            header, records = ResultsFile(path).read()
        except BudgetgraphError as exc:
            raise _error(exc) from None
        files.append((path.name, header or {}, records))
    try:
        out.write_text(render_view(files), encoding="utf-8")
    except OSError as exc:
        raise _error(f"cannot write {out}: {exc}") from None
    n = sum(len(r) for _, _, r in files)
    console.print(
        f"wrote {escape(str(out))}: {len(files)} results file(s), {n} episodes; open it in a browser"
    )
