"""Shows: an app streaming a run that pauses for a human decision, then streaming the resumed run, as
server-sent events (what a web endpoint sends): the ``approval_request`` event lists the pending calls, and
``sse_events(agent, thread_id=..., decisions=...)`` streams the rest of the run from its checkpoint.

    python examples/streamed_approval.py
"""

from __future__ import annotations

import asyncio
import json

from langgraph.checkpoint.memory import InMemorySaver

from budgetgraph import Agent, ScriptedModel, sse_events, tool


@tool
def send_email(to: str, body: str) -> str:
    """Send an email."""
    return f"sent to {to}: {body}"


def write_then_answer(messages, tools):
    """Ask to send one email, then report what the tool said."""
    results = [m.content.split("\n")[0] for m in messages if m.role == "tool"]
    if not results:
        return ScriptedModel.tool_calls([("send_email", {"to": "team@example.com", "body": "Ship it"})])
    return ScriptedModel.text(f"<answer>{results[-1]}</answer>")


def _event(message: str) -> tuple[str, dict]:
    """One server-sent event's type and data (what a browser's EventSource hands the page)."""
    lines = dict(line.split(": ", 1) for line in message.strip().splitlines())
    return lines["event"], json.loads(lines["data"])


async def main() -> None:
    agent = Agent(
        ScriptedModel(write_then_answer),
        [send_email],
        "send_email=1",
        planner="react",
        checkpointer=InMemorySaver(),
        approve=["send_email"],
    )
    pending = []
    async for message in sse_events(agent, "Tell the team to ship", thread_id="t1"):
        kind, data = _event(message)
        print(f"first stream: {kind}")
        if kind == "approval_request":  # the page shows these calls with approve / reject buttons
            pending = [call["id"] for call in data["calls"]]
            print(f"  awaiting a decision on {[call['name'] for call in data['calls']]}")
    decisions = {call_id: "approve" for call_id in pending}  # what the person clicked
    async for message in sse_events(agent, thread_id="t1", decisions=decisions):
        kind, data = _event(message)
        print(f"resumed stream: {kind}")
        if kind == "final_answer":
            print(f"  answer: {data['answer']!r}, send_email calls charged: {data['usage']['tool_calls']}")


if __name__ == "__main__":
    asyncio.run(main())
