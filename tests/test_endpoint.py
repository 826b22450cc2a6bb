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


def _raw(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except TimeoutError:
            out += b"<timeout>"
    return out


def test_a_web_page_or_a_rebound_host_is_refused(server: EndpointServer) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}]}
    url = f"{server.url}/chat/completions"
    cross = httpx.post(url, json=body, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403 and "web pages" in cross.json()["error"]["message"]
    rebound = httpx.post(url, json=body, headers={"Host": "rebind.evil.example:80"})
    assert rebound.status_code == 403 and "Host" in rebound.json()["error"]["message"]
    assert (
        httpx.post(url, json=body, headers={"Host": f"localhost:{server.server_address[1]}"}).status_code
        == 200
    )


def test_an_early_error_closes_the_connection_so_an_unread_body_is_never_a_request(
    server: EndpointServer,
) -> None:
    port = server.server_address[1]
    smuggled = b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4000001\r\n\r\n"
    answer = _raw(port, head + smuggled)
    assert answer.count(b"HTTP/1.1 ") == 1 and b"413" in answer and b"Connection: close" in answer


def test_a_stalled_connection_is_closed_after_the_read_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    import time

    from budgetgraph.models import endpoint

    monkeypatch.setattr(endpoint._Handler, "timeout", 0.5)
    srv = serve_model(ScriptedModel([]), name="slow")
    try:
        with socket.create_connection(("127.0.0.1", srv.server_address[1]), timeout=5) as s:
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0")  # and nothing more
            started = time.monotonic()
            assert s.recv(100) == b""  # the server hung up
            assert time.monotonic() - started < 3
    finally:
        srv.shutdown()


def test_connections_past_the_cap_get_a_503(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    import threading

    from budgetgraph.models import endpoint

    monkeypatch.setattr(endpoint, "MAX_CONNECTIONS", 2)
    srv = serve_model(ScriptedModel([]), name="capped")
    held = [socket.create_connection(("127.0.0.1", srv.server_address[1]), timeout=5) for _ in range(2)]
    try:
        for s in held:
            s.sendall(b"GET /v1/mod")  # two stalled requests hold both slots
        threading.Event().wait(0.3)
        assert b"503" in _raw(srv.server_address[1], b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    finally:
        for s in held:
            s.close()
        srv.shutdown()


def test_a_model_failure_is_a_500_without_its_text() -> None:
    def boom(messages: Any, tools: Any) -> Message:
        raise RuntimeError("engine failed reading /home/me/.cache/x.gguf with OPENAI_API_KEY=sk-live-hidden")

    srv = serve_model(ScriptedModel(boom), name="boom")
    try:
        reply = httpx.post(
            f"{srv.url}/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}
        )
        assert reply.status_code == 500
        message = reply.json()["error"]["message"]
        assert "RuntimeError" in message and ".cache" not in message and "sk-live" not in message
    finally:
        srv.shutdown()


def test_a_clients_schema_cannot_make_a_huge_grammar() -> None:
    pytest.importorskip("llama_cpp", reason="the grammar comes from llama-cpp-python (the local extra)")
    from budgetgraph.models.local import GRAMMAR_MAX_CHARS, tool_call_grammar

    schema = {
        "type": "object",
        "properties": {"q": {"type": "array", "items": {"type": "string"}, "maxItems": 10**7}},
    }
    deep: dict[str, Any] = {"type": "object"}
    for _ in range(3000):
        deep = {"type": "object", "properties": {"x": deep}}
    for parameters in (schema, deep):
        grammar = tool_call_grammar(["search"], parameters={"search": parameters})
        assert len(grammar) < GRAMMAR_MAX_CHARS
