"""One process of the pause-at-exhaustion test: start a run that pauses when its budget runs out, or resume it.

Usage: python pause_worker.py start|resume|decline CHECKPOINT_DB LOG THREAD
The tools append each call to LOG (so the test counts runs across processes); "start" prints the paused result
and kills itself (SIGKILL, nothing flushed after the checkpoint), "resume" grants one more of each tool.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from budgetgraph import Agent, Budget, ScriptedModel, tool


def agent(log: str, checkpointer: object) -> Agent:
    def record(line: str) -> None:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    @tool
    def search(query: str) -> str:
        """Search."""
        record(f"search {query}")
        return f"hits for {query}"

    @tool
    def fetch(url: str) -> str:
        """Fetch a page."""
        record(f"fetch {url}")
        return f"the page {url} says 42"

    plan = [
        ("search", {"query": "a"}),
        ("fetch", {"url": "u"}),
        ("search", {"query": "b"}),
        ("fetch", {"url": "v"}),
    ]

    def reply(messages, tools):
        done = sum(m.role == "tool" for m in messages)
        if not tools or done >= len(plan):
            return ScriptedModel.text(f"<answer>42, from {done} results</answer>")
        return ScriptedModel.tool_calls([plan[done]])

    return Agent(
        ScriptedModel(reply),
        [search, fetch],
        Budget(tool_calls={"search": 1, "fetch": 1}),
        planner="react",
        checkpointer=checkpointer,
        on_exhausted="pause",
    )


async def main() -> None:
    mode, db, log, thread = sys.argv[1:5]
    async with AsyncSqliteSaver.from_conn_string(db) as saver:
        runner = agent(log, saver)
        if mode == "start":
            result = await runner.arun("what is it?", thread_id=thread)
        else:
            grant = {"search": 1, "fetch": 1} if mode == "resume" else "decline"
            result = await runner.aresume(thread, grant=grant)
        out = {
            "answer": result.answer,
            "stop": result.stop_reason.kind,
            "resource": result.stop_reason.resource,
            "message": result.stop_reason.message,
            "request": result.budget_request,
            "tools": dict(result.usage.tool_calls),
            "limits": result.ledger.get("limits"),
        }
        print(json.dumps(out), flush=True)
    if mode == "start":
        os.kill(os.getpid(), signal.SIGKILL)  # a crash right after the pause: only the checkpoint survives


if __name__ == "__main__":
    asyncio.run(main())
