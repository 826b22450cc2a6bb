"""Message history in and out: budgetgraph or LangChain messages as a run's opening, the transcript back as
LangChain messages, and clear errors for histories a run cannot take."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from budgetgraph import Agent, ConfigError, Message, ScriptedModel, tool
from budgetgraph.models.langchain_messages import from_langchain, to_langchain

SEEN: list[list[Message]] = []


@tool
def search(query: str) -> str:
    """Search the web."""
    return "1. [Lyon] Lyon is the third-largest city of France."


def script(messages, tools):
    SEEN.append(list(messages))
    last_user = max(i for i, m in enumerate(messages) if m.role == "user")
    if not any(m.role == "tool" for m in messages[last_user:]):
        return ScriptedModel.tool_calls([("search", {"query": messages[last_user].content})])
    return ScriptedModel.text("<answer>Lyon</answer>")


HISTORY = [
    HumanMessage("What is the capital of France?"),
    AIMessage(
        "",
        tool_calls=[
            {"name": "search", "args": {"query": "capital of France"}, "id": "c0", "type": "tool_call"}
        ],
    ),
    ToolMessage("1. [Paris] capital", tool_call_id="c0", name="search"),
    AIMessage("Paris."),
    HumanMessage("And its third-largest city?"),
]


def test_a_langchain_history_opens_the_run_and_the_transcript_comes_back_as_langchain():
    SEEN.clear()
    agent = Agent(ScriptedModel(script), [search], "search=2", planner="tracker")
    result = agent.run(HISTORY)
    first_request = SEEN[0]
    assert [m.role for m in first_request] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert first_request[2].tool_calls[0].arguments == {"query": "capital of France"}
    assert result.answer == "Lyon" and result.usage.tool_calls == {"search": 1}  # the old call is not charged
    back = result.to_langchain()
    assert [type(m).__name__ for m in back[:5]] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
        "HumanMessage",
    ]
    assert back[1].tool_calls[0]["id"] == "c0" and back[2].tool_call_id == "c0"


def test_round_trip_keeps_roles_text_and_tool_calls():
    ours = from_langchain(HISTORY)
    again = from_langchain(to_langchain(ours))
    assert again == ours


@pytest.mark.parametrize(
    ("history", "says"),
    [
        ([HumanMessage("q"), AIMessage("a")], "end with the user's message"),
        ([SystemMessage("be terse"), HumanMessage("q")], "instructions="),
        (
            [
                AIMessage("", tool_calls=[{"name": "search", "args": {}, "id": "x", "type": "tool_call"}]),
                HumanMessage("q"),
            ],
            "no tool result",
        ),
        (
            [HumanMessage([{"type": "image_url", "image_url": {"url": "http://x"}}])],
            "'image_url' content block",
        ),
        ([], "end with the user's message"),
    ],
)
def test_histories_a_run_cannot_take_are_clear_errors(history, says):
    agent = Agent(ScriptedModel(script), [search], "search=2")
    with pytest.raises(ConfigError, match=says):
        agent.run(history)


def test_planners_that_take_one_question_say_so():
    agent = Agent(ScriptedModel(script), [search], "search=2", planner="bats")
    with pytest.raises(ConfigError, match="react and tracker"):
        agent.run(HISTORY)
    assert Message.user("q") in from_langchain([Message.user("q")])  # ours pass through
