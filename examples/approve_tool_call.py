"""Shows: a human approving, editing or rejecting an agent's pending tool call (LangGraph interrupt() under
the hood): the run pauses before the call is admitted, nothing is charged until a decision comes.

    python examples/approve_tool_call.py
"""

from __future__ import annotations

import asyncio

from langgraph.checkpoint.memory import InMemorySaver

from budgetgraph import Agent, ScriptedModel, tool


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


async def main() -> None:
    agent = Agent(
        ScriptedModel(write_then_answer),
        [send_email],
        "send_email=1",
        planner="react",
        checkpointer=InMemorySaver(),
        approve=["send_email"],
    )
    for thread, decision in [
        ("a", "approve"),
        ("b", {"action": "edit", "arguments": {"to": "me@example.com", "body": "Draft: ship it"}}),
        ("c", {"action": "reject", "reason": "not before the review"}),
    ]:
        paused = await agent.arun("Tell the team to ship", thread_id=thread)
        (call,) = paused.pending
        print(
            f"{thread}: paused ({paused.stop_reason.kind}) on {call.name}({dict(call.arguments)}), charged {paused.usage.total_tool_calls}"
        )
        done = await agent.aresume(thread, decisions={call.id: decision})
        print(
            f"{thread}: {done.answer!r}, send_email calls charged: {done.usage.tool_calls.get('send_email', 0)}"
        )


if __name__ == "__main__":
    asyncio.run(main())
