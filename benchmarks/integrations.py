"""What budgetgraph's ledger costs and what it holds inside other frameworks' agents.

    python benchmarks/integrations.py [--steps 20] [--runs 15]

1. Per-step overhead: LangChain's ``create_agent`` with and without ``BudgetMiddleware``, and a pydantic-ai
   ``Agent`` with and without ``BudgetCapability`` (a fake chat model, one trivial tool a step), as median
   milliseconds per step and the ratio.
2. The same scripted task (two batched queries, then a parallel pair, then one query a turn) under
   "3 searches (queries), 4000 tokens": the frameworks' own limits beside ours, with what each let through.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.hosts import Log, langchain_model, pydantic_ai_model, search_policy  # noqa: E402


def echo_policy(steps: int) -> Any:
    def policy(step: int, offered: list[str]) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        if step < steps and offered:
            return "", [("echo", {"text": f"step {step}"})]
        return "done", []

    return policy


def langchain_step(steps: int, budgeted: bool) -> float:
    from langchain.agents import create_agent
    from langchain_core.tools import tool

    from budgetgraph.integrations.langchain import BudgetMiddleware

    @tool
    async def echo(text: str) -> str:
        """Echo the text."""
        return text

    middleware = [BudgetMiddleware(f"echo={steps + 5},tokens=1000000")] if budgeted else []
    agent = create_agent(langchain_model(echo_policy(steps), Log()), [echo], middleware=middleware)
    start = time.perf_counter()
    state = asyncio.run(agent.ainvoke({"messages": [("user", "go")]}, {"recursion_limit": 4 * steps + 10}))
    elapsed = time.perf_counter() - start
    assert sum(m.type == "tool" for m in state["messages"]) == steps
    return elapsed / steps


def pydantic_ai_step(steps: int, budgeted: bool) -> float:
    from pydantic_ai import Agent

    from budgetgraph.integrations.pydantic_ai import BudgetCapability

    capability = BudgetCapability(f"echo={steps + 5},tokens=1000000")
    agent = Agent(pydantic_ai_model(echo_policy(steps), Log()), capabilities=[capability] if budgeted else [])

    @agent.tool_plain
    async def echo(text: str) -> str:
        """Echo the text."""
        return text

    start = time.perf_counter()
    result = asyncio.run(agent.run("go"))
    elapsed = time.perf_counter() - start
    assert sum(p.part_kind == "tool-return" for m in result.all_messages() for p in m.parts) == steps
    return elapsed / steps


def overhead(steps: int, runs: int) -> Table:
    table = Table(title=f"per-step overhead ({steps} steps a run, median of {runs} runs, ms/step)")
    for column in ("framework", "without", "with budgetgraph", "ratio"):
        table.add_column(column, justify="right" if column != "framework" else "left")
    for name, step in (("LangChain create_agent", langchain_step), ("pydantic-ai Agent", pydantic_ai_step)):
        step(steps, True), step(steps, False)  # warm-up: imports and first-call setup
        bare, budgeted = [], []
        for _ in range(runs):  # interleaved, so drift in the machine's speed hits both alike
            bare.append(step(steps, False))
            budgeted.append(step(steps, True))
        b, w = statistics.median(bare) * 1000, statistics.median(budgeted) * 1000
        table.add_row(name, f"{b:.3f}", f"{w:.3f}", f"{w / b:.2f}")
    return table


def _search_tools(ran: list[list[str]]) -> tuple[Any, Any]:
    from langchain_core.tools import tool

    @tool
    def search(queries: list[str]) -> str:
        """Search the web with a batch of keyword queries."""
        ran.append(list(queries))
        return "results for " + ", ".join(queries)

    def plain(queries: list[str]) -> str:
        """Search the web with a batch of keyword queries."""
        ran.append(list(queries))
        return "results for " + ", ".join(queries)

    from pydantic_ai import Tool

    return search, Tool(plain, name="search")


def _row(table: Table, name: str, ran: list[list[str]], log: Log, stop: str) -> None:
    queries = sum(map(len, ran))
    tokens = sum(i + o for i, o in log.reported)
    table.add_row(name, str(len(ran)), str(queries), str(len(log.reported)), str(tokens), stop)


def anchors() -> Table:
    from langchain.agents import create_agent
    from langchain.agents.middleware import ModelCallLimitMiddleware, ToolCallLimitMiddleware
    from pydantic_ai import Agent
    from pydantic_ai.exceptions import UsageLimitExceeded
    from pydantic_ai.usage import UsageLimits

    from budgetgraph.integrations.langchain import BudgetMiddleware, ChargedTool
    from budgetgraph.integrations.pydantic_ai import BudgetCapability

    table = Table(title='one task under "3 searches (queries), 4000 tokens": what each limit let through')
    for column in ("agent and limit", "search calls", "queries", "model calls", "tokens", "stop"):
        table.add_column(column)
    charged = {"search": ChargedTool(units="queries")}

    ran: list[list[str]] = []
    log = Log()
    search, _ = _search_tools(ran)
    limits = [
        ToolCallLimitMiddleware(tool_name="search", run_limit=3),
        ModelCallLimitMiddleware(run_limit=10),
    ]
    agent = create_agent(langchain_model(search_policy, log), [search], middleware=limits)
    asyncio.run(agent.ainvoke({"messages": [("user", "find it")]}))
    _row(
        table,
        "create_agent + ToolCallLimit(3) + ModelCallLimit(10)",
        ran,
        log,
        "tool limit, then model limit",
    )

    ran, log = [], Log()
    search, _ = _search_tools(ran)
    middleware = BudgetMiddleware("search=3,tokens=4000", tools=charged)
    agent = create_agent(langchain_model(search_policy, log), [search], middleware=[middleware])
    state = asyncio.run(agent.ainvoke({"messages": [("user", "find it")]}))
    stop = state.get("budget_stop") or {}
    _row(table, "create_agent + BudgetMiddleware", ran, log, f"{stop.get('kind')}: {stop.get('resource')}")

    ran, log = [], Log()
    _, plain = _search_tools(ran)
    pagent = Agent(pydantic_ai_model(search_policy, log), tools=[plain])
    try:
        pagent.run_sync("find it", usage_limits=UsageLimits(tool_calls_limit=3, total_tokens_limit=4000))
        said = "answered"
    except UsageLimitExceeded as exc:
        said = f"UsageLimitExceeded: {exc}"
    except Exception as exc:  # the run fails: nothing of its work comes back
        said = f"{type(exc).__name__}: {exc}"
    _row(table, "pydantic-ai + UsageLimits(tool_calls=3, tokens=4000)", ran, log, said[:60])

    ran, log = [], Log()
    _, plain = _search_tools(ran)
    capability = BudgetCapability("search=3,tokens=4000", tools=charged)
    pagent = Agent(pydantic_ai_model(search_policy, log), tools=[plain], capabilities=[capability])
    result = pagent.run_sync("find it")
    got = capability.stop(result.run_id) or {}
    _row(table, "pydantic-ai + BudgetCapability", ran, log, f"{got.get('kind')}: {got.get('resource')}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    console = Console(width=150)
    console.print(anchors())
    console.print(overhead(args.steps, args.runs))


if __name__ == "__main__":
    main()
