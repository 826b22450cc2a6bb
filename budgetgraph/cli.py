"""The command line: ``budgetgraph run QUESTION`` (evaluation commands come with the envs)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from .agents.agent import Agent, RunResult
from .budget.limits import Budget
from .budget.prices import PriceTable
from .errors import BudgetgraphError
from .tools.corpus import Corpus

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Budget-aware tool-using agents.")
console = Console(stderr=True)


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


@app.command()
def run(
    question: Annotated[str, typer.Argument(help="The question to answer.")],
    model: Annotated[
        str, typer.Option(help="local | local:/path.gguf | openai:MODEL or openai:MODEL@URL, scripted")
    ] = "local",
    corpus: Annotated[
        Path | None, typer.Option(help="A folder of .md/.txt files or a .jsonl of {id,title,text}.")
    ] = None,  # noqa: UP045
    budget: Annotated[
        str, typer.Option(help="Caps, e.g. search=5,open=5,usd=0.02,tokens=20000,seconds=120")
    ] = "search=5,open=5",
    planner: Annotated[
        str, typer.Option(help="react (no budget shown) | tracker (BATS budget tracker)")
    ] = "tracker",
    prices: Annotated[Optional[Path], typer.Option(help="YAML/JSON price file for models and tools.")] = None,  # noqa: UP045
    max_tokens: Annotated[int, typer.Option(help="Output tokens per model turn.")] = 512,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Answer QUESTION with an agent under a budget and print the answer, the stop reason and the usage."""
    try:
        caps = Budget.parse(budget)
        table = PriceTable.from_file(prices) if prices else None
        tools = Corpus.open_path(corpus).tools() if corpus else []
        if not tools:
            console.print(
                "[yellow]no --corpus given: the agent has no tools and answers from the model alone[/]"
            )
        agent = Agent(
            model=model, tools=tools, budget=caps, planner=planner, prices=table, max_tokens=max_tokens
        )
        result = agent.run(question)
    except BudgetgraphError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return
    out = Console()
    out.print(f"[bold]answer:[/] {result.answer if result.answer is not None else '(none)'}")
    out.print(f"[bold]stop reason:[/] {result.stop_reason}")
    out.print(_usage_table(result, caps))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
