"""``budgetgraph run QUESTION``: one question, one agent, its answer and spend."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..agents.agent import Agent
from ..agents.planners import planner_options
from ..agents.result import RunResult
from ..budget.limits import Budget
from ..budget.prices import PriceTable
from ..errors import BudgetgraphError, ConfigError
from ..tools.corpus import Corpus
from ..tools.search_backends import SEARCH_BACKENDS
from .common import (
    MODEL_HELP,
    _error,
    _planner_help,
    app,
    console,
)


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
    from ..agents.events import (
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
        elif isinstance(event, ToolResult) and (event.call is None or event.status in ("error", "refused")):
            said = event.content.split("\n\n<budget>")[0].strip().splitlines()
            console.print(
                f"[yellow]   {escape(said[0][:200] if said else '(no text)')}[/]"
            )  # why: refused, failed
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


def _warn_if_scripted_cannot_call(agent: Agent) -> None:
    """The built-in scripted policy searches with a tool named ``search`` and opens with ``open`` (the corpus
    tools): with other tools it calls none, and says so rather than answering "unknown" without a word."""
    names = {t.name for t in agent.tools}
    if agent.model.name == "scripted" and names and "search" not in names:
        console.print(
            "[yellow]--model scripted is a fixed policy for the corpus tools (search, then open): with these "
            f"tools ({escape(', '.join(sorted(names)))}) it calls none and answers from nothing[/]"
        )


def _load_embedded(agent: Agent) -> None:
    """Load an embedded model before the run, saying so: on a CPU the wait is otherwise silent."""
    from ..models.local import LocalModel

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
            help="Search the web (web_search + fetch_page; pip install 'budgetgraph\\[web]') with: "
            + "; ".join(f"{k} ({v})" for k, v in SEARCH_BACKENDS.items())
        ),
    ] = None,
    allow_host: Annotated[
        list[str],
        typer.Option(
            help="With --web: a host fetch_page may open although the guard refuses it (an intranet name, a "
            "local server: 127.0.0.1); repeat for more. Off by default: private, loopback and metadata "
            "addresses are refused."
        ),
    ] = [],  # noqa: B006
    budget: Annotated[
        str | None,
        typer.Option(
            help="Caps, e.g. search=5,open=5,usd=0.02,tokens=20000,seconds=120 (web_search=3,fetch_page=2 with "
            "--web); a bare 5 is 5 calls of each tool (the default)"
        ),
    ] = None,
    planner: Annotated[
        str,
        typer.Option(
            help=_planner_help(
                "The planner label, options in brackets as for eval (tracker\\[pace=true]; react shows no "
                "budget; tracker is the default)"
            )
        ),
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
            from ..tools.search_backends import search_backend
            from ..tools.web import FetchGuard, web_tools

            tools += web_tools(backend=search_backend(web), guard=FetchGuard(allow_hosts=tuple(allow_host)))
        elif allow_host:
            raise ConfigError("--allow-host opens the fetch guard of --web: give --web too")
        name, options = planner_options(planner)
        caps = Budget.parse(budget or "5", [t.budget_key for t in tools]) if tools or budget else Budget()
        if not tools:
            console.print(
                "[yellow]no --corpus or --web given: the agent has no tools and answers from the model alone[/]"
            )
        agent = Agent(
            model=model,
            tools=tools,
            budget=caps,
            planner=name,
            options=options,
            prices=table,
            max_tokens=max_tokens,
        )
        _warn_if_scripted_cannot_call(agent)
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
