"""One process of the cross-process thread-ownership test: start a run that pauses at exhaustion, or resume it
with a grant at a given moment (two such processes race for the thread).

Usage: python thread_worker.py start|resume CHECKPOINT_DB LOG REDIS_URL_OR_EMPTY [START_AT]
Each search appends a line to LOG; the last line printed is JSON: the run's stop, or the error it raised.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from budgetgraph import Agent, RedisLeases, ScriptedModel, ThreadPolicy, tool


async def main(action: str, db: str, log: str, redis_url: str, start_at: float) -> None:
    @tool
    async def search(q: str) -> str:
        """Search."""
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(q + "\n")
        await asyncio.sleep(0.3)  # the two resumes overlap
        return "hits"

    def reply(messages, tools):
        if not tools:
            return ScriptedModel.text("<answer>done</answer>")
        return ScriptedModel.tool_calls([("search", {"q": f"q{sum(m.role == 'tool' for m in messages)}"})])

    async with AsyncSqliteSaver.from_conn_string(db) as saver:
        threads = ThreadPolicy(leases=RedisLeases(redis_url)) if redis_url else None
        agent = Agent(
            ScriptedModel(reply),
            [search],
            "search=2",
            planner="react",
            checkpointer=saver,
            on_exhausted="pause",
            threads=threads,
        )
        while time.time() < start_at:
            await asyncio.sleep(0.005)
        try:
            if action == "start":
                result = await agent.arun("q", thread_id="t")
            else:
                result = await agent.aresume("t", grant={"search": 2})
            print(json.dumps({"stop": result.stop_reason.kind, "usage": dict(result.usage.tool_calls)}))
        except Exception as exc:  # noqa: BLE001 - reported to the test, which checks which one
            print(json.dumps({"raised": type(exc).__name__, "message": str(exc)}))


if __name__ == "__main__":
    asyncio.run(
        main(
            sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]) if len(sys.argv) > 5 else 0
        )
    )
