"""The app-facing surface: events as JSON and server-sent events, budget updates an app can show, streamed
text without the agent's markup."""

from __future__ import annotations

import asyncio
import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from budgetgraph import Agent, ScriptedModel, SQLiteBudgetStore, tool
from budgetgraph.agents import event_to_dict, sse_events
from budgetgraph.agents.markup import MarkupStripper
from budgetgraph.agents.prompts import extract_answer


@tool
def search(query: str) -> str:
    """Search the web."""
    return "1. [Paris] Paris is the capital of France."


def agent(budget: str = "search=3,usd=0.05") -> Agent:
    def script(messages, tools):
        if not any(m.role == "tool" for m in messages):
            return ScriptedModel.tool_calls([("search", {"query": "capital of France"})])
        return ScriptedModel.text("Thinking. <answer>Paris</answer>")

    return Agent(ScriptedModel(script), [search], budget, planner="tracker", settings={"stream": True})


def strip_reference(text: str) -> str:
    text = re.sub(r"<tool_call>.*?(</tool_call>|$)", "", text, flags=re.S | re.I)
    return re.sub(r"</?answer>|</tool_call>", "", text, flags=re.I)  # a stray closing tag goes too


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(
        st.sampled_from(
            ["<answer>", "</answer>", "<tool_call>", "</tool_call>", "<", "a", " b", "<b>", "<ans"]
        ),
        max_size=12,
    ),
    cuts=st.lists(st.integers(0, 60), max_size=6),
)
def test_markup_is_stripped_wherever_the_deltas_cut(parts, cuts):
    text = "".join(parts)
    out: list[str] = []
    strip = MarkupStripper(out.append)
    last = 0
    for cut in sorted(c for c in cuts if c <= len(text)) + [len(text)]:
        strip(text[last:cut])
        last = cut
    strip.flush()
    assert "".join(out) == strip_reference(text)


def collect(a: Agent, **kw):
    async def go():
        return [e async for e in a.astream("What is the capital of France?", **kw)]

    return asyncio.run(go())


def test_every_event_has_a_json_form_with_its_type():
    events = collect(agent())
    dicts = [event_to_dict(e) for e in events]
    for d in dicts:
        json.dumps(d)  # plain JSON: no Decimal, dataclass or Mapping left
    types = [d["type"] for d in dicts]
    assert types[:5] == [
        "model_turn",
        "tool_call_started",
        "tool_call_finished",
        "tool_result",
        "budget_update",
    ]
    assert types[-1] == "final_answer" and dicts[-1]["answer"] == "Paris"
    deltas = "".join(d["text"] for d in dicts if d["type"] == "text_delta")
    assert deltas == "Thinking. Paris" and "<answer>" not in deltas
    assert dicts[0]["message"]["tool_calls"][0]["arguments"] == {"query": "capital of France"}


def test_a_budget_update_says_used_remaining_and_regime_per_resource(tmp_path):
    store = SQLiteBudgetStore(tmp_path / "b.db")
    account = store.account("user:7", "search=2", window="day")
    update = next(e for e in collect(agent(), account=account) if type(e).__name__ == "BudgetUpdate")
    rows = {(r["kind"], r["name"]): r for r in update.resources}
    assert rows[("tool", "search")] == {
        "name": "search",
        "kind": "tool",
        "used": 1,
        "limit": 3,
        "remaining": 1,  # what the run can still use: the account's cap is the tighter one
        "regime": "MEDIUM",
    }
    usd = rows[("resource", "usd")]
    assert isinstance(usd["used"], float) and usd["limit"] == 0.05
    mine = rows[("account", "search")]
    assert (mine["used"], mine["remaining"], mine["account"]) == (1, 1, "user:7")
    assert mine["window"].startswith("day ") and mine["regime"] == "MEDIUM"


def test_sse_events_are_well_formed_and_end_with_the_answer():
    async def go():
        return [chunk async for chunk in sse_events(agent(), "What is the capital of France?")]

    chunks = asyncio.run(go())
    for chunk in chunks:
        lines = chunk.split("\n")
        assert chunk.endswith("\n\n") and lines[0].startswith("event: ") and lines[1].startswith("data: ")
        assert json.loads(lines[1][6:])["type"] == lines[0][7:]
    assert chunks[-1].startswith("event: final_answer")


def test_a_failing_budget_store_becomes_one_error_event():
    import pytest

    pytest.importorskip("redis")
    from budgetgraph import RedisBudgetStore

    account = RedisBudgetStore("redis://127.0.0.1:1/0").account("user:1", "usd=1")

    async def go():
        return [chunk async for chunk in sse_events(agent(), "q", account=account)]

    chunks = asyncio.run(go())
    assert chunks[-1].startswith("event: error")
    data = json.loads(chunks[-1].split("\n")[1][6:])
    assert data["kind"] == "BudgetStoreError" and "Redis" in data["message"]


def test_the_streamed_answer_matches_the_extracted_one():
    events = collect(agent())
    streamed = "".join(e.text for e in events if type(e).__name__ == "TextDelta")
    assert extract_answer("Thinking. <answer>Paris</answer>") in streamed
