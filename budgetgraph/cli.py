"""The command line: ``budgetgraph run QUESTION``, ``budgetgraph eval ENV``, ``budgetgraph report FILE``."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .agents.agent import Agent
from .agents.registry import PLANNERS
from .agents.result import RunResult
from .budget.limits import Budget
from .budget.prices import PriceTable
from .envs.registry import ENVS
from .errors import BudgetgraphError, ConfigError
from .models.registry import model_forms
from .planners.mcts import DEFAULT_PRIOR_MIX
from .tools.corpus import Corpus
from .tools.search_backends import SEARCH_BACKENDS


def _planner_help(prefix: str) -> str:
    """The planners of the registry, for the help of ``--planner`` (never a hand-kept list)."""
    names = [n if PLANNERS[n].build is not None else f"{n} (eval only)" for n in PLANNERS]
    return f"{prefix}: {' | '.join(names)}"


MODEL_HELP = f"The model: {model_forms()}"
ENV_HELP = "; ".join(f"{name}: {info.summary}" for name, info in ENVS.items())

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Budget-aware tool-using agents.")
console = Console(stderr=True, soft_wrap=True)


def _out() -> Console:
    """stdout at ``$COLUMNS`` when set (piped or not), else the terminal's width; 220 columns when it is not
    a terminal, so tables written to files or CI logs stay readable."""
    import os

    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return Console(width=int(columns))
    return Console() if sys.stdout.isatty() else Console(width=220)


def _error(message: object) -> typer.Exit:
    """Print an error (its text taken literally, never as rich markup) and give the exit to raise."""
    console.print(f"[red]error:[/] {escape(str(message))}")
    return typer.Exit(2)


def _shard(value: str | None) -> tuple[int, int] | None:
    """``"2/3"`` -> ``(2, 3)``; the range is checked where the tasks are selected."""
    if value is None:
        return None
    index, sep, count = value.partition("/")
    if not sep or not index.strip().isdigit() or not count.strip().isdigit():
        raise typer.BadParameter(f"--shard takes I/N, e.g. 1/2, not {value!r}")
    return int(index), int(count)


def _only(value: str | None) -> tuple[str, ...] | None:
    """``"a,b"`` or ``@FILE`` (a JSON list of ids, or sale-fit's weights file: its held-out tasks)."""
    if value is None:
        return None
    if not value.startswith("@"):
        ids: Any = [v.strip() for v in value.split(",") if v.strip()]
    else:
        try:
            data = json.loads(Path(value[1:]).read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise typer.BadParameter(f"--only {value}: cannot read a JSON file of task ids: {exc}") from None
        ids = data.get("held_out_tasks") if isinstance(data, dict) else data
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise typer.BadParameter(f"--only {value}: expected a JSON list of task ids or 'held_out_tasks'")
    if not ids:
        raise typer.BadParameter("--only names no task ids")
    return tuple(ids)


_T = TypeVar("_T")


class _Terminated(KeyboardInterrupt):
    """SIGTERM during a sweep (``kill``, ``timeout``): it stops as Ctrl-C does, resumable, with exit 143."""


async def _until_terminated(work: Coroutine[Any, Any, _T]) -> _T:
    """Await ``work``; SIGTERM cancels it from the event loop (never mid-``__del__``) and raises _Terminated."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    terminated = False

    def stop() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, stop)
    try:
        return await task
    except asyncio.CancelledError:
        if terminated:
            raise _Terminated from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


@app.callback()
def _root() -> None:
    """budgetgraph: agents whose tool calls, tokens, dollars and time are capped exactly."""


def _usage_table(result: RunResult, budget: Budget) -> Table:
    table = Table(title="usage", show_header=True)
    table.add_column("resource")
    table.add_column("used", justify="right")
    table.add_column("cap", justify="right")
    u = result.usage
    for name, used in sorted(u.tool_calls.items()):
        table.add_row(f"tool {name}", str(used), str(budget.tool_calls.get(name, "-")))
    for name in budget.tool_calls:
        if name not in u.tool_calls:
            table.add_row(f"tool {name}", "0", str(budget.tool_calls[name]))
    rows: list[tuple[str, object, object]] = [
        ("input tokens", u.input_tokens, budget.input_tokens),
        ("output tokens", u.output_tokens, budget.output_tokens),
        ("total tokens", u.total_tokens, budget.total_tokens),
        ("llm calls", u.llm_calls, budget.llm_calls),
        ("dollars", f"{u.usd:.6f}", budget.usd),
        ("seconds", f"{u.seconds:.1f}", budget.seconds),
    ]
    for label, value, cap in rows:
        table.add_row(label, str(value), "-" if cap is None else str(cap))
    return table


async def _live(agent: Agent, question: str) -> RunResult:
    """Print the run's events as they come (on stderr), and return the result."""
    from .agents.events import (
        BudgetUpdate,
        FinalAnswer,
        TextDelta,
        ToolCallFinished,
        ToolCallStarted,
        ToolResult,
        VerifierDecision,
    )

    result: RunResult | None = None
    streamed = False
    async for event in agent.astream(question):
        if isinstance(event, TextDelta):
            console.print(event.text, end="", style="dim", markup=False, highlight=False)
            streamed = True
            continue
        if streamed:
            console.print()
            streamed = False
        if isinstance(event, ToolCallStarted):
            args = ", ".join(f"{k}={v!r}" for k, v in event.arguments.items())
            console.print(
                f"[cyan]-> {escape(event.name)}({escape(args)})[/] "
                f"[dim]{event.units} unit(s), ${event.cost:.4f}[/]"
            )
        elif isinstance(event, ToolCallFinished):
            note = "" if event.charged else " [yellow](refunded)[/]"
            console.print(f"[cyan]<- {escape(event.name)}[/] [dim]{event.seconds:.2f}s[/]{note}")
        elif isinstance(event, ToolResult) and event.call is None:
            console.print(f"[yellow]{escape(event.content[:200])}[/]")
        elif isinstance(event, BudgetUpdate):
            spent = event.ledger.get("spent", {})
            parts = [
                f"{k.removeprefix('tool:')} {spent.get(k, 0)}/{v}"
                for k, v in event.ledger.get("limits", {}).items()
            ]
            console.print(
                f"[magenta]budget[/] {escape(', '.join(parts) or 'uncapped')}  regime {event.regime}"
            )
        elif isinstance(event, VerifierDecision):
            console.print(
                f"[bold magenta]verifier: {escape(event.decision)}[/] on {escape(repr(event.answer))}: "
                f"{escape(event.summary[:160])}"
            )
        elif isinstance(event, FinalAnswer):
            result = event.result
    assert result is not None
    return result


def _load_embedded(agent: Agent) -> None:
    """Load an embedded model before the run, saying so: on a CPU the wait is otherwise silent."""
    from .models.local import LocalModel

    model = agent.model
    if not isinstance(model, LocalModel):
        return
    console.print(
        f"[dim]loading the embedded model on {model.n_threads or 'all'} CPU thread(s) "
        "(the first time, its parts are joined into one 1.1 GB file)...[/]"
    )
    started = time.perf_counter()
    model.load()
    console.print(
        f"[dim]loaded {escape(model.path.name)} in {time.perf_counter() - started:.1f} s; on a CPU each model turn takes from a few "
        "seconds to a minute (Ctrl-C stops it)[/]"
    )


@app.command()
def run(
    question: Annotated[str, typer.Argument(help="The question to answer.")],
    model: Annotated[str, typer.Option(help=MODEL_HELP)] = "local",
    corpus: Annotated[
        Path | None, typer.Option(help="A folder of .md/.txt files or a .jsonl of {id,title,text}.")
    ] = None,
    web: Annotated[
        str | None,
        typer.Option(
            help="Search the web (web_search + fetch_page; the [web] extra) with: "
            + "; ".join(f"{k} ({v})" for k, v in SEARCH_BACKENDS.items())
        ),
    ] = None,
    budget: Annotated[
        str | None,
        typer.Option(
            help="Caps, e.g. search=5,open=5,usd=0.02,tokens=20000,seconds=120 (web_search=3,fetch_page=2 with "
            "--web); a bare 5 is 5 calls of each tool (the default)"
        ),
    ] = None,
    planner: Annotated[
        str, typer.Option(help=_planner_help("The planner (react shows no budget; tracker is the default)"))
    ] = "tracker",
    prices: Annotated[Path | None, typer.Option(help="YAML/JSON price file for models and tools.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Output tokens per model turn.")] = 512,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    stream: Annotated[
        bool, typer.Option(help="Show the run live: text, tool calls, budget, verifier.")
    ] = True,
) -> None:
    """Answer QUESTION with an agent under a budget and print the answer, the stop reason and the usage."""
    try:
        table = PriceTable.from_file(prices) if prices else None
        tools = Corpus.open_path(corpus).tools() if corpus else []
        if web:
            from .tools.search_backends import search_backend
            from .tools.web import web_tools

            tools += web_tools(backend=search_backend(web))
        caps = Budget.parse(budget or "5", [t.budget_key for t in tools]) if tools or budget else Budget()
        if not tools:
            console.print(
                "[yellow]no --corpus or --web given: the agent has no tools and answers from the model alone[/]"
            )
        agent = Agent(
            model=model, tools=tools, budget=caps, planner=planner, prices=table, max_tokens=max_tokens
        )
        _load_embedded(agent)
        if stream and not as_json:
            result = asyncio.run(_live(agent, question))
        else:
            result = agent.run(question)
    except BudgetgraphError as exc:
        raise _error(exc) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: the model call in flight was stopped; nothing was answered")
        raise typer.Exit(130) from None
    failed = result.stop_reason.kind == "error"  # the backend failed for good: say so, and exit non-zero
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n")
        if failed:
            raise typer.Exit(1)
        return
    if failed:
        console.print(f"[red]error:[/] {escape(result.stop_reason.message)}")
        raise typer.Exit(1)
    out = Console()
    out.print(f"[bold]answer:[/] {escape(result.answer) if result.answer is not None else '(none)'}")
    out.print(f"[bold]stop reason:[/] {escape(str(result.stop_reason))}")
    out.print(_usage_table(result, caps))


def _shared_account(budget: str | None, store: str | None, key: str | None, out: Path) -> Any:
    """The sweep-wide account of --shared-budget / --store / --account (None without them)."""
    from .budget.shared import SharedAccount

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
        str,
        typer.Option(
            help=_planner_help(
                "Comma-separated planner labels, options in brackets (e.g. react,bats\\[bats_mode=full]); planners"
            )
        ),
    ] = "react,tracker",
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

    from .envs.registry import DEFAULT_BUDGETS, env_options
    from .envs.report import render_rows, summarize
    from .envs.results import ResultsFile
    from .envs.runner import EvalSpec, parse_budgets, run_eval

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
            planners=tuple(p.strip() for p in planner.split(",") if p.strip()),
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
    from .envs.report import (
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
        from .envs.inspect_log import write_inspect_logs

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
    from .envs.report import paired as shared_tasks
    from .envs.results import read_results

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
    from .envs.plot import plot_pareto

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
    from .envs.report import compare as compare_cells
    from .envs.report import render_comparisons

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
    from .envs.results import ResultsFile
    from .envs.view import render_view

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
    from .envs.sale_fit import fit_from_results

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
    from .envs.consistency_replay import replay_file
    from .envs.results import read_results
    from .envs.stats import compare_paired
    from .planners.consistency import THRESHOLD, StopRule

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


@app.command()
def serve(
    model: Annotated[
        str, typer.Option(help="The model to serve: local, local:0.5b or local:/path/model.gguf.")
    ] = "local",
    host: Annotated[
        str, typer.Option(help="The address to listen on (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port (0: a free one, printed).")] = 8080,
    name: Annotated[
        str | None, typer.Option(help="The model name clients send (default: the model's).")
    ] = None,
) -> None:
    """Serve an embedded model as an OpenAI-compatible endpoint with tool calls (POST /v1/chat/completions),
    for `--model openai:NAME@URL`, other frameworks or apps, offline."""
    from .models import infer_model
    from .models.endpoint import serve_model
    from .models.local import LocalModel

    try:
        chosen = infer_model(model)
        if not isinstance(chosen, LocalModel):
            raise _error(f"serve runs embedded models (local, local:0.5b, local:/path.gguf), not {model!r}")
        chosen.load()
        server = serve_model(chosen, host, port, name)
    except BudgetgraphError as exc:
        raise _error(exc) from None
    except OSError as exc:
        raise _error(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    console.print(f"serving {escape(server.model_name)} at {escape(server.url)} (Ctrl-C stops)")
    _out().print(
        f"budgetgraph run QUESTION --model 'openai:{escape(server.model_name)}@{escape(server.url)}'"
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.shutdown()
        console.print("stopped")


data_app = typer.Typer(no_args_is_help=True, help="Get benchmark data: downloaded, checked, made ready.")
app.add_typer(data_app, name="data")


@data_app.command("hotpotqa")
def data_hotpotqa(
    out: Annotated[Path, typer.Option(help="Folder for the download and the subset.")] = Path(
        "data/hotpotqa"
    ),
    n: Annotated[int, typer.Option(help="How many hard questions to sample.")] = 350,
    seed: Annotated[
        int, typer.Option(help="The sample's seed (the same file, n and seed: the same subset).")
    ] = 0,
    from_file: Annotated[
        Path | None,
        typer.Option(help="An hotpot_dev_distractor_v1.json you already have (checked the same)."),
    ] = None,
    url: Annotated[str, typer.Option(help="Where to download the official dev file (a mirror).")] = "",
    sha256: Annotated[str, typer.Option(help="The SHA-256 the download must have.")] = "",
) -> None:
    """Download HotpotQA's official dev file (distractor setting, 46 MB), check its SHA-256, and write a
    seeded sample of N hard questions as JSONL for `budgetgraph eval hotpotqa --data`."""
    from .envs.hotpotqa_data import HOTPOT_DEV_SHA256, HOTPOT_DEV_URL, prepare_hotpotqa

    try:
        target = prepare_hotpotqa(
            out,
            n=n,
            seed=seed,
            url=url or HOTPOT_DEV_URL,
            sha256=sha256 or HOTPOT_DEV_SHA256,
            from_file=from_file,
            progress=lambda message: console.print(escape(message), highlight=False),
        )
    except BudgetgraphError as exc:
        raise _error(exc) from None
    _out().print(f"budgetgraph eval hotpotqa --data {escape(str(target))} --planner react,tracker --budget 3")


def _pair(item: str, option: str) -> tuple[str, str]:
    key, eq, value = item.rpartition("=")
    if not eq or not key or not value:
        raise ValueError(f"{option} takes NAME=VALUE, got {item!r}")
    return key.strip(), value.strip()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
