"""Shows: a FastAPI endpoint that streams an agent's events as server-sent events, with a per-user daily
budget kept in a budget store (SQLite here; Redis when BUDGETGRAPH_REDIS_URL is set), under 50 concurrent
requests from 5 users. A user over the cap gets HTTP 429 with a JSON body that names the cap.

    pip install 'budgetgraph[app]'          # FastAPI (plus [redis] for a Redis store)
    python examples/fastapi_sse.py          # runs the load in-process and prints a table
    uvicorn examples.fastapi_sse:app        # or serve it: curl -N 'localhost:8000/ask?user=ann&q=capital+of+France'
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections import Counter
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse, StreamingResponse

from budgetgraph import Agent, RedisBudgetStore, ScriptedModel, SQLiteBudgetStore, tool
from budgetgraph.agents import sse_events
from budgetgraph.budget import BudgetStore

DAILY = "search=6,tokens=20000"
"""Each user's daily cap, across every request, process and machine that shares the store."""


@tool
def search(query: str) -> str:
    """Search the web."""
    return "1. [Paris] Paris is the capital and largest city of France."


def one_search(messages, tools):
    """Search once, then answer from what came back."""
    if tools and not any(m.role == "tool" for m in messages):
        return ScriptedModel.tool_calls([("search", {"query": messages[-1].content})])
    return ScriptedModel.text("<answer>Paris</answer>")


def create_app(store: BudgetStore) -> FastAPI:
    agent = Agent(ScriptedModel(one_search, latency=0.02), [search], "search=2", planner="tracker")
    app = FastAPI(title="budgetgraph SSE example")

    @app.get("/ask")
    async def ask(user: str, q: str):  # type: ignore[no-untyped-def]
        account = store.account(f"user:{user}", DAILY, window="day")
        usage = account.usage()
        spent = [k for k in account.limits if usage.remaining(k) == 0]
        if spent:  # nothing left: refuse before starting (a run admitted now is still capped exactly)
            body = {
                "error": "budget",
                "message": f"user {user!r} has used today's {spent[0]} budget",
                **usage.to_dict(),
            }
            return JSONResponse(body, status_code=429)
        return StreamingResponse(sse_events(agent, q, account=account), media_type="text/event-stream")

    @app.get("/usage")
    async def usage(user: str):  # type: ignore[no-untyped-def]
        return store.account(f"user:{user}", DAILY, window="day").usage().to_dict()

    return app


async def load(store: BudgetStore, users: int = 5, per_user: int = 10) -> dict[str, Counter[str]]:
    """``users`` x ``per_user`` concurrent requests, then one more per user; per user: answered, stopped on the
    budget part-way (its search was refused: it answers from what it has), or refused up front (HTTP 429)."""
    app = create_app(store)
    outcome: dict[str, Counter[str]] = {f"u{i}": Counter() for i in range(users)}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://example") as client:

        async def one(user: str) -> None:
            async with client.stream("GET", "/ask", params={"user": user, "q": "capital of France"}) as reply:
                if reply.status_code == 429:
                    outcome[user]["refused (429)"] += 1
                    return
                last = ""
                async for line in reply.aiter_lines():
                    if line.startswith("data: "):
                        last = line[6:]
                final = json.loads(last)
                outcome[user]["answered" if final.get("answer") else "no answer"] += 1
                if not final.get("usage", {}).get("tool_calls", {}).get("search"):
                    outcome[user]["search refused"] += (
                        1  # admitted, but the user's searches ran out meanwhile
                    )

        await asyncio.gather(*(one(u) for u in outcome for _ in range(per_user)))
        await asyncio.gather(*(one(u) for u in outcome))  # one more each, now that the caps are used up
    return outcome


def report(name: str, store: BudgetStore, outcome: dict[str, Counter[str]]) -> None:
    print(f"{name}: 50 concurrent requests from 5 users, then 1 more each; daily cap {DAILY}")
    print(f"{'user':<6}{'answered':>9}{'no search':>10}{'HTTP 429':>9}{'searches':>10}{'tokens':>8}")
    worst = 0
    for user, counts in outcome.items():
        account = store.account(f"user:{user}", DAILY, window="day")
        usage = account.usage()
        searches, tokens = usage.spent.get("tool:search", 0), usage.spent.get("total_tokens", 0)
        assert counts["refused (429)"] >= 1, counts  # the last request of each user
        print(
            f"{user:<6}{counts['answered']:>9}{counts['search refused']:>10}{counts['refused (429)']:>9}"
            f"{searches:>10}{tokens:>8}"
        )
        assert searches <= account.limits["tool:search"] and tokens <= account.limits["total_tokens"], usage
        assert not usage.reserved, usage
        worst = max(worst, searches)
    print(f"{name}: spend per user never exceeded the cap (most searches by one user: {worst} of 6)")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteBudgetStore(Path(tmp) / "budgets.db")
        report("sqlite", store, asyncio.run(load(store)))
    url = os.environ.get("BUDGETGRAPH_REDIS_URL")
    if url:
        redis_store = RedisBudgetStore(url, prefix=f"example-{os.getpid()}")
        report("redis", redis_store, asyncio.run(load(redis_store)))


app = create_app(SQLiteBudgetStore(Path(tempfile.gettempdir()) / "budgetgraph-example-budgets.db"))

if __name__ == "__main__":
    main()
