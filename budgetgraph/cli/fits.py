"""``budgetgraph sale-fit`` and ``consistency-replay``: fits and replays over results files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import BudgetgraphError
from .common import (
    _error,
    _out,
    app,
    console,
)


@app.command("sale-fit")
def sale_fit(
    auctions: Annotated[
        Path, typer.Argument(help="Results of a 'sale[pool=...]' sweep (its auctions' bids).")
    ],
    alone: Annotated[
        list[str],
        typer.Option(help="AGENT=RESULTS: a pool agent's own sweep on the same tasks (repeat per agent)."),
    ],
    prices: Annotated[str, typer.Option(help="AGENT=PRICE,...: $ per million tokens of each pool agent.")],
    out: Annotated[Path, typer.Option(help="Where to write the weights JSON (sale[weights=FILE]).")] = Path(
        "sale_weights.json"
    ),
    train_share: Annotated[float, typer.Option(help="Share of the tasks to fit on (seeded split).")] = 0.5,
    seed: Annotated[int, typer.Option(help="Seed of the train split.")] = 0,
    planner: Annotated[
        str | None, typer.Option(help="Only these episodes of the single-agent sweeps (e.g. react).")
    ] = None,
    budget: Annotated[
        str | None, typer.Option(help="Only this budget's episodes of the single-agent sweeps (e.g. 3).")
    ] = None,
) -> None:
    """Fit SALE's weights by the min-max MILP on a train split (needs the sale extra: scipy)."""
    from ..envs.sale_fit import fit_from_results

    try:
        files = dict(_pair(item, "--alone") for item in alone)
        price = {k: float(v) for k, v in (_pair(p, "--prices") for p in prices.split(",") if p.strip())}
        weights, train, held = fit_from_results(
            auctions, files, price, out, train_share=train_share, seed=seed, planner=planner, budget=budget
        )
    except (BudgetgraphError, ValueError, OSError) as exc:
        raise _error(exc) from None
    console.print(
        f"fitted on {len(train)} tasks ({len(held)} held out): entropy {weights.entropy:.3f}, jury "
        f"{escape(json.dumps({k: round(v, 3) for k, v in weights.jury.items()}))}; wrote {escape(str(out))}"
    )


@app.command("consistency-replay")
def consistency_replay(
    results: Annotated[
        Path, typer.Argument(help="Results of a 'majority[samples=N]' sweep (its samples' answers).")
    ],
    planner: Annotated[
        str | None, typer.Option(help="The sampling planner to replay, if the file holds several.")
    ] = None,
    threshold: Annotated[
        list[float] | None,
        typer.Option(help="Stopping threshold (repeat for several; default 0.95, the paper's)."),
    ] = None,
    rule: Annotated[
        str, typer.Option(help="adaptive (Beta for <= 2 answers, Dirichlet above) | beta | dirichlet.")
    ] = "adaptive",
    live: Annotated[
        Path | None,
        typer.Option(
            help="Results of a live 'consistency[samples=N]' sweep: check the replay against it per task."
        ),
    ] = None,
) -> None:
    """Replay Adaptive-Consistency over a fixed-N majority sweep: the samples it would draw and its pass@1."""
    from ..envs.consistency_replay import replay_file
    from ..envs.results import read_results
    from ..envs.stats import compare_paired
    from ..planners.consistency import THRESHOLD, StopRule

    if rule not in ("adaptive", "beta", "dirichlet"):
        raise _error(f"--rule must be adaptive, beta or dirichlet, not {rule!r}")
    thresholds = tuple(threshold or (THRESHOLD,))
    if live and THRESHOLD not in thresholds:
        raise _error(
            f"--live compares at {THRESHOLD} (the consistency planner's threshold): add --threshold {THRESHOLD}"
        )
    try:
        label, by_threshold = replay_file(
            str(results),
            planner,
            rule=cast("StopRule", rule),
            thresholds=thresholds,
        )
        live_rows = read_results([live])[1] if live else []
    except (BudgetgraphError, ValueError, OSError) as exc:
        raise _error(exc) from None
    table = Table(title=f"Adaptive-Consistency replayed over {escape(label)} (a replay, not a run)")
    for column in ("threshold", "tasks", "samples (of drawn)", "pass@1", "majority pass@1", "AC - majority"):
        table.add_column(column)
    for t, rows in by_threshold.items():
        n = len(rows)
        used = sum(r.samples for r in rows) / max(n, 1)
        drawn = sum(r.drawn for r in rows) / max(n, 1)
        ac = {r.task_id: r.correct for r in rows}
        fixed = {r.task_id: r.majority_correct for r in rows}
        c = compare_paired(fixed, ac, ("majority", "AC"))
        table.add_row(
            f"{t:g}",
            str(n),
            f"{used:.2f} ({drawn:.2f})",
            f"{sum(ac.values()):.0f}/{n}",
            f"{sum(fixed.values()):.0f}/{n}",
            f"{c.difference:+.3f} [{c.low:+.3f}, {c.high:+.3f}] p={c.p_value:.2f}" if n else "-",
        )
    _out().print(table)
    rows = next(iter(by_threshold.values()))
    rescored = sum(r.majority_rescored != r.majority_correct for r in rows)
    _out().print(
        f"majority re-scored from the answer alone differs from its recorded score on {rescored} of {len(rows)}"
    )
    if live:
        by_task = {r.task_id: r for r in by_threshold[THRESHOLD]}
        shared = [
            r for r in live_rows if r.get("task_id") in by_task and (r.get("details") or {}).get("answers")
        ]
        same_n = sum((r["details"].get("samples") == by_task[r["task_id"]].samples) for r in shared)
        same_c = sum(
            float((r.get("scores") or {}).get("correct", 0.0)) == by_task[r["task_id"]].correct
            for r in shared
        )
        _out().print(
            f"against the live run ({escape(str(live))}), {len(shared)} shared tasks: the same number of samples "
            f"on {same_n}, the same pass/fail on {same_c}"
        )


def _pair(item: str, option: str) -> tuple[str, str]:
    key, eq, value = item.rpartition("=")
    if not eq or not key or not value:
        raise ValueError(f"{option} takes NAME=VALUE, got {item!r}")
    return key.strip(), value.strip()
