"""Human approval of tool calls through LangGraph interrupt() / Command(resume=...): approve, edit, reject,
with the pending calls in the result and nothing charged before a decision."""

from __future__ import annotations

import asyncio

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from budgetgraph import Agent, ConfigError, ScriptedModel, tool

SENT: list[dict] = []


@tool
def send_email(to: str, body: str) -> str:
    """Send an email."""
    SENT.append({"to": to, "body": body})
    return f"sent to {to}"


@tool
def search(query: str) -> str:
    """Search the web."""
    return "1. [Paris] capital of France"


def script(messages, tools):
    if not any(m.role == "tool" for m in messages):
        return ScriptedModel.tool_calls(
            [("search", {"query": "capital"}), ("send_email", {"to": "boss@example.com", "body": "Paris"})]
        )
    last = [m.content for m in messages if m.role == "tool"]
    return ScriptedModel.text(f"<answer>{' | '.join(c.split(chr(10))[0] for c in last)}</answer>")


def make() -> Agent:
    return Agent(
        ScriptedModel(script),
        [search, send_email],
        "search=2,send_email=1",
        planner="react",
        checkpointer=InMemorySaver(),
        approve=["send_email"],
    )


def first(agent: Agent, tid: str):
    SENT.clear()
    result = agent.run("Tell my boss the capital of France", thread_id=tid)
    assert result.stop_reason.kind == "interrupted" and not SENT
    (pending,) = result.pending
    assert (pending.name, dict(pending.arguments)) == (
        "send_email",
        {"to": "boss@example.com", "body": "Paris"},
    )
    assert result.usage.total_tool_calls == 0  # nothing admitted or charged before the decision
    assert result.to_dict()["pending"][0]["id"] == pending.id
    return pending


def test_approve_runs_the_call_and_charges_it(caplog):
    agent = make()
    pending = first(agent, "t1")
    from langgraph.checkpoint.serde import jsonplus

    jsonplus._warned_unregistered_types.clear()  # LangGraph warns once a process: make this run the first
    with caplog.at_level("WARNING"):
        done = asyncio.run(agent.aresume("t1", decisions={pending.id: "approve"}))
    assert not [r for r in caplog.records if "unregistered type budgetgraph" in r.getMessage()]
    assert done.stop_reason.kind != "interrupted" and SENT == [{"to": "boss@example.com", "body": "Paris"}]
    assert done.usage.tool_calls == {"search": 1, "send_email": 1}
    assert "sent to boss@example.com" in done.answer


def test_edit_runs_the_call_with_the_new_arguments():
    agent = make()
    pending = first(agent, "t2")
    edit = {"action": "edit", "arguments": {"to": "me@example.com", "body": "Paris!"}}
    done = asyncio.run(agent.aresume("t2", decisions={pending.id: edit}))
    assert SENT == [{"to": "me@example.com", "body": "Paris!"}]
    assert done.usage.tool_calls["send_email"] == 1


def test_reject_does_not_run_or_charge_and_tells_the_model_why():
    agent = make()
    pending = first(agent, "t3")
    done = asyncio.run(agent.aresume("t3", decisions={pending.id: {"action": "reject", "reason": "not now"}}))
    assert SENT == [] and "send_email" not in done.usage.tool_calls
    assert done.usage.tool_calls["search"] == 1  # the call that needed no approval ran
    told = [m.content for m in done.messages if m.role == "tool" and m.name == "send_email"][0]
    assert told.startswith("The user rejected this call: not now.")


def test_a_bad_decision_is_not_run_and_says_what_was_wrong():
    agent = make()
    pending = first(agent, "t4")
    done = asyncio.run(agent.aresume("t4", decisions={pending.id: {"action": "edit", "arguments": "x"}}))
    told = [m.content for m in done.messages if m.role == "tool" and m.name == "send_email"][0]
    assert SENT == [] and "not understood" in told and "arguments" in told


def test_langgraphs_own_command_resume_works_on_the_graph():
    agent = make()
    pending = first(agent, "t5")
    config = {"configurable": {"thread_id": "t5"}}
    from budgetgraph.agents import RunContext

    run = agent.settings.new_run()
    asyncio.run(agent.graph.ainvoke(Command(resume="approve"), config, context=RunContext(run=run)))
    assert SENT and pending.id


def test_misuse_is_a_clear_error():
    with pytest.raises(ConfigError, match="checkpointer"):
        Agent(ScriptedModel(script), [send_email], approve=True)
    with pytest.raises(ConfigError, match="does not have"):
        Agent(ScriptedModel(script), [send_email], approve=["nope"], checkpointer=InMemorySaver())
    agent = make()
    first(agent, "t6")
    with pytest.raises(ConfigError, match="awaiting a decision"):
        asyncio.run(agent.aresume("t6"))


def test_a_paused_run_streams_an_approval_request_and_its_resume_streams_to_the_end():
    from budgetgraph.agents import ApprovalRequest, FinalAnswer, ToolCallFinished

    agent = make()
    SENT.clear()

    async def go():
        first = [e async for e in agent.astream("Tell my boss the capital of France", thread_id="s1")]
        (request,) = [e for e in first if isinstance(e, ApprovalRequest)]
        assert not SENT  # nothing runs before the decision
        decisions = {c.id: "approve" for c in request.calls}
        rest = [e async for e in agent.astream(thread_id="s1", decisions=decisions)]
        return request, rest

    request, rest = asyncio.run(go())
    assert request.thread_id == "s1" and [c.name for c in request.calls] == ["send_email"]
    assert any(isinstance(e, ToolCallFinished) and e.name == "send_email" for e in rest)
    final = rest[-1]
    assert isinstance(final, FinalAnswer) and final.result.stop_reason.kind == "answered"
    assert SENT == [{"to": "boss@example.com", "body": "Paris"}]
    assert final.result.messages[0].content == "Tell my boss the capital of France"  # the whole transcript
    assert final.result.usage.tool_calls == {"search": 1, "send_email": 1}

    async def misuse():
        with pytest.raises(ConfigError, match="names its thread"):
            [e async for e in agent.astream(decisions="approve")]
        with pytest.raises(ConfigError, match="needs a question"):
            [e async for e in agent.astream()]

    asyncio.run(misuse())
