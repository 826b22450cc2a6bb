"""``budgetgraph serve``'s OpenAI-compatible endpoint: the real OpenAI SDK (our ``openai:`` backend) over real
HTTP on 127.0.0.1 runs a tool-using agent through it, streamed or not, and malformed requests get a 400 with an
OpenAI-style error. The embedded model behind it runs in ``examples/openai_compatible.py`` (a model test)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytest.importorskip("openai", reason="the openai: backend needs pip install 'budgetgraph[openai]'")

from budgetgraph import Agent, Budget, tool  # noqa: E402
from budgetgraph.models import ScriptedModel  # noqa: E402
from budgetgraph.models.endpoint import EndpointServer, serve_model  # noqa: E402
from budgetgraph.models.messages import Message, ToolSchema  # noqa: E402
from budgetgraph.models.openai import OpenAIModel  # noqa: E402

seen: list[tuple[list[Message], list[ToolSchema], dict[str, Any]]] = []


def _policy(messages: list[Message], tools: list[ToolSchema]) -> Message:
    """Look the word up once, then answer with what the tool said."""
    results = [m for m in messages if m.role == "tool"]
    if tools and not results:
        return ScriptedModel.tool_calls([("lookup", {"word": "ledger"})])
    said = results[-1].content.splitlines()[0] if results else "nothing"  # the result, not the budget block
    return Message.assistant(f"<answer>{said}</answer>")


class _Recording(ScriptedModel):
    async def request(self, messages: Any, tools: Any, settings: Any) -> Any:
        seen.append((list(messages), list(tools), dict(settings)))
        return await super().request(messages, tools, settings)


@pytest.fixture(scope="module")
def server() -> Iterator[EndpointServer]:
    srv = serve_model(_Recording(_policy, name="scripted-served"), name="served")
    yield srv
    srv.shutdown()


@tool(price="0.001")
def lookup(word: str) -> str:
    """Look a word up in the glossary.

    Args:
        word: the word
    """
    return f"{word}: a record of what was spent"


@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_using_agent_runs_through_the_endpoint_with_the_real_sdk(server, stream):
    seen.clear()
    model = OpenAIModel("served", base_url=server.url, stream=stream)
    agent = Agent(model, [lookup], Budget(tool_calls={"lookup": 2}))
    result = agent.run("What is a ledger?")
    assert result.stop_reason.kind == "answered", result.stop_reason
    assert result.answer == "ledger: a record of what was spent"
    assert result.usage.tool_calls == {"lookup": 1}
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    first, second = seen[0], seen[-1]
    assert [t.name for t in first[1]] == ["lookup"] and first[1][0].parameters["properties"]["word"]
    tool_messages = [m for m in second[0] if m.role == "tool"]
    assert tool_messages and tool_messages[0].tool_call_id  # the call id made the round trip
    assert [c.name for m in second[0] for c in m.tool_calls] == ["lookup"]


def test_tool_choice_forms_reach_the_model(server):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    base = {"messages": [{"role": "user", "content": "hi"}], "tools": tools, "max_tokens": 16}
    for choice, expected in [
        ("required", "required"),
        ({"type": "function", "function": {"name": "lookup"}}, "lookup"),
        (None, "auto"),
    ]:
        seen.clear()
        reply = httpx.post(f"{server.url}/chat/completions", json=dict(base, tool_choice=choice), timeout=10)
        assert reply.status_code == 200, reply.text
        assert seen[0][2]["tool_choice"] == expected and seen[0][2]["max_tokens"] == 16
        body = reply.json()
        assert body["choices"][0]["finish_reason"] == "tool_calls"
        call = body["choices"][0]["message"]["tool_calls"][0]
        assert call["type"] == "function" and json.loads(call["function"]["arguments"]) == {"word": "ledger"}
        assert (
            body["usage"]["total_tokens"]
            == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
        )
    models = httpx.get(f"{server.url}/models", timeout=10).json()
    assert [m["id"] for m in models["data"]] == ["served"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "JSON object"),
        (json.dumps({"messages": []}).encode(), "non-empty list"),
        (json.dumps({"messages": [{"role": "wizard", "content": "x"}]}).encode(), "needs a role"),
        (
            json.dumps(
                {"messages": [{"role": "user", "content": "x"}], "tool_choice": {"function": {}}}
            ).encode(),
            "tool_choice",
        ),
        (
            json.dumps({"messages": [{"role": "user", "content": "x"}], "max_tokens": -3}).encode(),
            "max_tokens",
        ),
        (
            json.dumps(
                {
                    "messages": [
                        {
                            "role": "assistant",
                            "tool_calls": [{"function": {"name": "a", "arguments": "{oops"}}],
                        }
                    ]
                }
            ).encode(),
            "not JSON",
        ),
        (json.dumps({"messages": [{"role": "tool", "content": "x"}]}).encode(), "tool_call_id"),
    ],
)
def test_a_malformed_request_is_a_400_that_says_what_was_wrong(server, body, says):
    reply = httpx.post(
        f"{server.url}/chat/completions",
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert says in error["message"] and error["type"] == "invalid_request_error"


def test_unknown_routes_are_404(server):
    assert httpx.post(f"{server.url}/completions", json={}, timeout=10).status_code == 404
    assert httpx.get(f"{server.url}/nothing", timeout=10).status_code == 404
