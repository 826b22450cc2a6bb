"""Shows: a run that pauses where its budget runs out and goes on when the app grants more, as server-sent
events: the ``budget_request`` event names the spent resource and what is left, the app grants once (the run
goes on from its checkpoint, in a new Agent as another process would build it) and declines the second
request (the run answers with what it has). The checkpoints live in SQLite.

    python examples/budget_pause.py
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from budgetgraph import Agent, ScriptedModel, sse_events, tool

CALLS: list[str] = []


@tool
def search(query: str) -> str:
    """Search the archive."""
    CALLS.append(query)
    return f"3 documents mention {query!r}"


def researcher(messages, tools):
    """Search for one more angle each turn while it may; answer when the tools are taken away."""
    done = sum(m.role == "tool" for m in messages)
    if not tools:
        return ScriptedModel.text(f"<answer>a summary of {done} searches</answer>")
    return ScriptedModel.tool_calls([("search", {"query": f"angle {done + 1}"})])


def build(checkpointer: AsyncSqliteSaver) -> Agent:
    """What each request handler builds: nothing of the run lives in it, all of it is in the checkpoint."""
    return Agent(
        ScriptedModel(researcher),
        [search],
        "search=2",
        planner="react",
        checkpointer=checkpointer,
        on_exhausted="pause",
    )


def _event(message: str) -> tuple[str, dict]:
    lines = dict(line.split(": ", 1) for line in message.strip().splitlines())
    return lines["event"], json.loads(lines["data"])


async def stream(db: Path, label: str, **kwargs) -> dict | None:
    """One request: stream the run (or its resume) and return the budget request it paused on, if any."""
    request = None
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        async for message in sse_events(build(saver), thread_id="t1", **kwargs):
            kind, data = _event(message)
            if kind == "budget_request":
                request = data["request"]
                left = {r["name"]: f"{r['used']}/{r['limit']}" for r in request["resources"]}
                print(f"{label}: paused, {request['resource']} is spent (used/limit {left})")
            elif kind == "budget_grant":
                print(
                    f"{label}: granted {data['amount']} more {data['resource']} (limit now {data['limit']})"
                )
            elif kind == "final_answer" and data["stop"]["kind"] != "interrupted":
                print(f"{label}: answer {data['answer']!r} ({data['stop_reason']}), searches {CALLS}")
    return request


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "checkpoints.db"
        await stream(db, "request 1", question="What changed in the archive policy?")
        await stream(db, "request 2", grant={"search": 1})  # the app (or a person) grants one more search
        await stream(db, "request 3", grant="decline")  # and declines the next request
        print(f"each search ran once: {len(CALLS) == len(set(CALLS)) == 3}")


if __name__ == "__main__":
    asyncio.run(main())
