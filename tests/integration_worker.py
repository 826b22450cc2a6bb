"""One process of the shared-account test: a LangChain or pydantic-ai agent whose own budget allows 6
searches, on an account (SQLite budget store) that allows 5 to every process together.

Usage: python integration_worker.py langchain|pydantic-ai DB. It prints the number of searches it ran.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from budgetgraph import SQLiteBudgetStore  # noqa: E402
from tests.hosts import Log, langchain_model, pydantic_ai_model  # noqa: E402


def one_query(step: int, offered: list[str]) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    return ("<answer>done</answer>", []) if not offered else ("", [("search", {"queries": [f"q{step}"]})])


def main() -> None:
    framework, db = sys.argv[1], sys.argv[2]
    store = SQLiteBudgetStore(db)
    account = store.account("user-1", "search=5", window="day")
    ran: list[str] = []
    if framework == "langchain":
        from langchain.agents import create_agent
        from langchain_core.tools import tool

        from budgetgraph.integrations.langchain import BudgetMiddleware

        @tool
        def search(queries: list[str]) -> str:
            """Search the web."""
            ran.extend(queries)
            return "results"

        middleware = BudgetMiddleware("search=6", account=account)
        agent = create_agent(langchain_model(one_query, Log()), [search], middleware=[middleware])
        asyncio.run(agent.ainvoke({"messages": [("user", "find it")]}))
    else:
        from pydantic_ai import Agent

        from budgetgraph.integrations.pydantic_ai import BudgetCapability

        capability = BudgetCapability("search=6", account=account)
        agent = Agent(pydantic_ai_model(one_query, Log()), capabilities=[capability])

        @agent.tool_plain
        def search(queries: list[str]) -> str:
            """Search the web."""
            ran.extend(queries)
            return "results"

        agent.run_sync("find it")
    store.close()
    print(len(ran))


if __name__ == "__main__":
    main()
