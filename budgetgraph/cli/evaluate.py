"""``budgetgraph eval ENV``: a sweep of planners x budgets x tasks into a results file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ..envs.registry import ENVS
from ..errors import BudgetgraphError, ConfigError
from ..planners.mcts import DEFAULT_PRIOR_MIX
from .common import (
    ENV_HELP,
    MODEL_HELP,
    _error,
    _only,
    _out,
    _planner_help,
    _shard,
    _Terminated,
    _until_terminated,
    app,
    console,
)


def _shared_account(budget: str | None, store: str | None, key: str | None, out: Path) -> Any:
    """The sweep-wide account of --shared-budget / --store / --account (None without them)."""
    from ..budget.shared import SharedAccount

    if budget is None and store is None:
        if key is not None:
            raise ConfigError(
                "--account names the key of a --shared-budget: give --shared-budget and --store"
            )
        return None
    if budget is None or store is None:
        raise ConfigError("a sweep-wide budget needs both --shared-budget (e.g. 'usd=20') and --store")
    return SharedAccount(store, key or out.stem, budget)


@app.command("eval")
def eval_(
    env: Annotated[str, typer.Argument(help=ENV_HELP)],
    data: Annotated[Path | None, typer.Option(help="The environment's data file (or BFCL folder).")] = None,
    corpus: Annotated[Path | None, typer.Option(help="qa only: a corpus JSONL of {id,title,text}.")] = None,
    model: Annotated[str, typer.Option(help=MODEL_HELP)] = "local",
    planner: Annotated[
        str | None,
        typer.Option(
            help=_planner_help(
                "Comma-separated planner labels, options in brackets (e.g. react,bats\\[bats_mode=full]; default "
                "react,tracker, single_call for bfcl); planners"
            )
        ),
    ] = None,
    budget: Annotated[
        list[str],
        typer.Option(
            help="Budgets: '2,5' = 2 and 5 calls per capped tool; full strings separated by ';'; costplan "
            "also takes xF (F times the optimal cost). Default: 5, or x1.5 for costplan."
        ),
    ] = [],  # noqa: B006
    limit: Annotated[
        int | None, typer.Option(help="Use the first N tasks (a seeded sample with --seed).")
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Episodes run at once.")] = 4,
    out: Annotated[Path, typer.Option(help="Results JSONL; rerunning the same command resumes it.")] = Path(
        "results.jsonl"
    ),
    seed: Annotated[int | None, typer.Option(help="Seed for the task sample.")] = None,
    prices: Annotated[Path | None, typer.Option(help="YAML/JSON price file for models and tools.")] = None,
    executor: Annotated[str, typer.Option(help="asyncio (this process) | ray")] = "asyncio",
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address (default: start a local Ray).")
    ] = None,
    max_tokens: Annotated[int, typer.Option(help="Output tokens per model turn.")] = 512,
    per_category: Annotated[
        int | None, typer.Option(help="bfcl: the first N items of each category.")
    ] = None,
    tasks: Annotated[int, typer.Option(help="costplan: how many tasks to generate.")] = 50,
    level: Annotated[int, typer.Option(help="costplan: refinement stages per task.")] = 2,
    event: Annotated[
        str,
        typer.Option(
            help="costplan: none | ban_tool | cost_change | preference_change | steplen_change | mixed"
        ),
    ] = "none",
    prior_mix: Annotated[
        float, typer.Option(help="costplan: uniform share mixed into the model's MCTS prior (0 to 1).")
    ] = DEFAULT_PRIOR_MIX,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    epochs: Annotated[
        int, typer.Option(help="Run each task this many times (epoch e: model seed recorded per episode).")
    ] = 1,
    temperature: Annotated[
        float | None, typer.Option(help="Sampling temperature of every model call (epochs differ above 0).")
    ] = None,
    extend: Annotated[
        bool,
        typer.Option(
            "--extend", help="Add to --out even though it was written with another configuration (named)."
        ),
    ] = False,
    no_text: Annotated[
        bool,
        typer.Option(
            "--no-text",
            help="Write episodes without the task's text (no transcript, gold as a digest, long strings "
            "digested), so a results file of data that may not be copied can be kept; it still resumes "
            "and reports.",
        ),
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option(
            help="I/N: run only the I-th of N interleaved slices of the selected tasks (one process or "
            "machine per slice, each with its own --out; report reads the files together)."
        ),
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated task ids, or @FILE (a JSON list, or an object with 'held_out_tasks' as "
            "sale-fit writes): run only these of the selection."
        ),
    ] = None,
    tool_cache: Annotated[
        bool,
        typer.Option(
            "--tool-cache",
            help="hotpotqa, qa, coding: a repeated identical tool call is answered from the first, free.",
        ),
    ] = False,
    isolation: Annotated[
        str | None,
        typer.Option(
            help="coding: the sandbox for model-written code. Default: bubblewrap, refused when missing; "
            "'unshare' or 'none' runs without it, by name, and every run warns."
        ),
    ] = None,
    shared_budget: Annotated[
        str | None,
        typer.Option(
            help="A cap on the whole sweep ('usd=20'), drawn on by every episode on every Ray node; needs "
            "--store. An episode the account cannot fund stops on it like any budget."
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            help="Where --shared-budget lives: a redis:// URL (a fleet) or an SQLite file (one machine)."
        ),
    ] = None,
    account: Annotated[
        str | None, typer.Option(help="The shared account's key (default: the --out file's name).")
    ] = None,
) -> None:
    """Run planners x budgets x tasks of ENV and append one JSON line per episode to --out."""

    from ..envs.registry import DEFAULT_BUDGETS, env_options
    from ..envs.report import render_rows, summarize
    from ..envs.results import ResultsFile
    from ..envs.runner import EvalSpec, parse_budgets, run_eval

    given: dict[str, object] = {
        "corpus": str(corpus) if corpus else None,
        "per_category": per_category,
        "tool_cache": tool_cache,
        "isolation": isolation,
    }
    if env in ENVS and ENVS[env].generated:  # its own options have defaults: they are always its settings
        given.update(tasks=tasks, level=level, event=event, prior_mix=prior_mix)
    try:
        options, seed = env_options(
            env,
            given,
            max_tokens=max_tokens,
            data=str(data) if data else None,
            prices=str(prices) if prices else None,
            seed=seed,
        )
    except BudgetgraphError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        spec = EvalSpec(
            env=env,
            env_options=options,
            model=model,
            planners=tuple(p.strip() for p in planner.split(",") if p.strip())
            if planner
            else ENVS[env].planners,
            budgets=parse_budgets(budget) if budget else DEFAULT_BUDGETS.get(env, ("5",)),
            limit=limit,
            seed=seed,
            concurrency=concurrency,
            epochs=epochs,
            temperature=temperature,
            keep_text=not no_text,
            shard=_shard(shard),
            only=_only(only),
        )
        shared = _shared_account(shared_budget, store, account, out)
        if model == "local" or model.startswith("local:"):
            console.print(
                "[dim]the embedded model runs on this CPU: an episode takes from a few seconds to a minute; "
                f"each is written to {escape(str(out))} as it ends (Ctrl-C stops, the same command resumes)[/]"
            )
        # a sweep run in the background has SIGINT ignored by its shell, so SIGTERM is how it is stopped
        summary = asyncio.run(
            _until_terminated(
                run_eval(
                    spec,
                    out,
                    executor=executor,
                    address=address,
                    progress=progress,
                    allow_changes=extend,
                    shared=shared,
                )
            )
        )
    except BudgetgraphError as exc:
        raise _error(exc) from None
    except KeyboardInterrupt as exc:
        console.print(
            f"[yellow]{'terminated' if isinstance(exc, _Terminated) else 'interrupted'}[/]: finished episodes "
            f"are in {escape(str(out))}; rerun the same command to resume"
        )
        raise typer.Exit(143 if isinstance(exc, _Terminated) else 130) from None
    console.print(
        f"{summary.ran} episodes run, {summary.skipped} already in {escape(str(summary.path))}, "
        f"{summary.errors} errors, {summary.seconds:.1f} s"
    )
    _, records = ResultsFile(out).read()
    keep = set(spec.planners), set(spec.budgets)
    shown = _out()
    cells = summarize(r for r in records if r["planner"] in keep[0] and r["budget"] in keep[1])
    shown.print(render_rows(cells, shown.width))
