"""One conformance suite for the HTTP backends, replayed through an httpx transport in each provider's
documented wire format (OpenAI chat completions, Anthropic messages): tool calls, parallel calls, usage with
cache tokens, errors, retries with backoff on 429 / 5xx / timeouts, streaming. Live tests run with a key."""

from __future__ import annotations

import asyncio
import json
import math
import os
from decimal import Decimal

import httpx
import pytest

from budgetgraph.budget import Budget, Ledger
from budgetgraph.budget.prices import ModelPrice
from budgetgraph.errors import ModelError
from budgetgraph.meter import ModelMeter
from budgetgraph.models.messages import Message, ToolCall, ToolSchema

openai = pytest.importorskip("openai", reason="needs pip install 'budgetgraph[openai]'")
anthropic = pytest.importorskip("anthropic", reason="needs pip install 'budgetgraph[anthropic]'")

httpx2 = pytest.importorskip("httpx2", reason="the anthropic SDK 2.x depends on httpx2")
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")

from budgetgraph.models.anthropic import AnthropicModel  # noqa: E402
from budgetgraph.models.openai import OpenAIModel  # noqa: E402

SEARCH = ToolSchema(
    "search",
    "Search.",
    {
        "type": "object",
        "properties": {"queries": {"type": "array", "items": {"type": "string"}}},
        "required": ["queries"],
    },
)
OPEN = ToolSchema(
    "open", "Open.", {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
)


class OpenAIWire:
    name = "openai"
    lib = httpx

    def model(self, transport, **kw):
        client = openai.AsyncOpenAI(
            api_key="sk-test", max_retries=0, http_client=httpx.AsyncClient(transport=transport)
        )
        return OpenAIModel("gpt-4.1-mini", client=client, backoff=0.01, **kw)

    def calls(self, calls, usage=(50, 10, 20)):
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4.1-mini",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": f"call_{i}",
                                "type": "function",
                                "function": {"name": n, "arguments": json.dumps(a)},
                            }
                            for i, (n, a) in enumerate(calls)
                        ],
                    },
                }
            ],
            "usage": {
                "prompt_tokens": usage[0],
                "completion_tokens": usage[1],
                "total_tokens": usage[0] + usage[1],
                "prompt_tokens_details": {"cached_tokens": usage[2]},
            },
        }

    def text(self, text):
        return {
            "id": "chatcmpl-2",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4.1-mini",
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
            ],
            "usage": {"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35},
        }

    def stream(self):
        chunks = [
            {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]},
            {"choices": [{"index": 0, "delta": {"content": "lo"}}]},
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "call_9",
                                    "type": "function",
                                    "function": {"name": "search", "arguments": '{"queries": '},
                                }
                            ]
                        },
                    }
                ]
            },
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '["x"]}'}}]},
                        "finish_reason": "tool_calls",
                    }
                ]
            },
            {"choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}},
        ]
        body = "".join(
            f"data: {json.dumps({'id': 'c', 'object': 'chat.completion.chunk', 'created': 1, 'model': 'gpt-4.1-mini', **c})}\n\n"
            for c in chunks
        )
        return body + "data: [DONE]\n\n"

    def check_request(self, body, headers):
        assert headers["authorization"] == "Bearer sk-test"
        assert body["model"] == "gpt-4.1-mini" and body["max_completion_tokens"] == 64
        assert body["tools"][0] == {
            "type": "function",
            "function": {"name": "search", "description": "Search.", "parameters": SEARCH.parameters},
        }
        assert body["tool_choice"] == "required" and body["messages"][0] == {
            "role": "system",
            "content": "Be brief.",
        }
        tool_msgs = [m for m in body["messages"] if m["role"] == "tool"]
        assert [m["tool_call_id"] for m in tool_msgs] == ["c1", "c2"]

    usage_expect = {"input": 50, "output": 10, "cached": 20, "write": 0}
    path = "/chat/completions"


class AnthropicWire:
    name = "anthropic"
    lib = httpx2  # the anthropic SDK 2.x runs on httpx2, httpx's successor fork

    def model(self, transport, **kw):
        return AnthropicModel(
            "claude-sonnet-4-5",
            api_key="sk-ant-test",
            http_client=httpx2.AsyncClient(transport=transport),
            backoff=0.01,
            **kw,
        )

    def calls(self, calls, usage=(50, 10, 30, 10)):
        return {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Let me look."}]
            + [
                {"type": "tool_use", "id": f"toolu_{i}", "name": n, "input": a}
                for i, (n, a) in enumerate(calls)
            ],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {
                "input_tokens": usage[0],
                "output_tokens": usage[1],
                "cache_read_input_tokens": usage[2],
                "cache_creation_input_tokens": usage[3],
            },
        }

    def text(self, text):
        return {
            "id": "msg_2",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 30, "output_tokens": 5},
        }

    def stream(self):
        events = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_3",
                        "type": "message",
                        "role": "assistant",
                        "content": [],
                        "model": "claude-sonnet-4-5",
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {
                            "input_tokens": 40,
                            "output_tokens": 1,
                            "cache_read_input_tokens": 0,
                            "cache_creation_input_tokens": 0,
                        },
                    },
                },
            ),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
            ),
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}},
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 1,
                    "content_block": {"type": "tool_use", "id": "toolu_9", "name": "search", "input": {}},
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": '{"queries": '},
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": '["x"]}'},
                },
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 1}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                    "usage": {"output_tokens": 12},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        return "".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in events)

    def check_request(self, body, headers):
        # the SDK sends the key as x-api-key or as a bearer token, and always an API version
        assert (
            headers.get("x-api-key") == "sk-ant-test" or headers.get("authorization") == "Bearer sk-ant-test"
        )
        assert headers["anthropic-version"]
        assert (
            body["model"] == "claude-sonnet-4-5"
            and body["max_tokens"] == 64
            and body["system"] == "Be brief."
        )
        assert body["tools"][0] == {
            "name": "search",
            "description": "Search.",
            "input_schema": SEARCH.parameters,
        }
        assert body["tool_choice"] == {"type": "any"}
        assert body["messages"][1]["content"][0] == {
            "type": "tool_use",
            "id": "c1",
            "name": "search",
            "input": {"queries": ["a"]},
        }
        results = body["messages"][2]  # the two parallel results travel in one user turn
        assert results["role"] == "user" and [b["tool_use_id"] for b in results["content"]] == ["c1", "c2"]

    usage_expect = {"input": 90, "output": 10, "cached": 30, "write": 10}
    path = "/v1/messages"


WIRES = [OpenAIWire(), AnthropicWire()]
HISTORY = [
    Message.system("Be brief."),
    Message.user("Who designed the Apple Remote?"),
    Message.assistant(
        "", (ToolCall("c1", "search", {"queries": ["a"]}), ToolCall("c2", "open", {"title": "T"}))
    ),
    Message.tool("results", "c1", "search"),
    Message.tool("page", "c2", "open"),
]


class Replay:
    """An httpx transport handler that answers from a script of (status, json | exception); records requests."""

    def __init__(self, *script, lib=httpx):
        self.script = list(script)
        self.lib = lib
        self.requests = []

    def transport(self):
        return self.lib.MockTransport(self)

    def __call__(self, request):
        self.requests.append(request)
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, Exception):
            raise item
        status, payload = item
        if isinstance(payload, str):
            return self.lib.Response(status, text=payload, headers={"content-type": "text/event-stream"})
        return self.lib.Response(status, json=payload)


def _replay(wire, *script):
    return Replay(*script, lib=wire.lib)


def _request(model, tools=(SEARCH, OPEN), choice="required", ledger=None):
    """One metered call (the metering layer owns retries and the error a backend's failure becomes)."""
    meter = ModelMeter(model, ledger if ledger is not None else Ledger())
    settings = {"max_tokens": 64, "tool_choice": choice}
    return asyncio.run(meter.call(HISTORY, list(tools), settings, role="act", max_tokens=64))


@pytest.fixture(params=WIRES, ids=lambda w: w.name)
def wire(request):
    return request.param


def test_tool_call_and_the_request_on_the_wire(wire):
    replay = _replay(wire, (200, wire.calls([("search", {"queries": ["apple remote"]})])))
    response = _request(wire.model(replay.transport()))
    call = response.message.tool_calls[0]
    assert (call.name, dict(call.arguments), call.error) == ("search", {"queries": ["apple remote"]}, None)
    assert replay.requests[0].url.path.endswith(wire.path)
    wire.check_request(json.loads(replay.requests[0].content), replay.requests[0].headers)


def test_parallel_calls(wire):
    replay = _replay(
        wire, (200, wire.calls([("search", {"queries": ["a"]}), ("open", {"title": "Apple Remote"})]))
    )
    calls = _request(wire.model(replay.transport())).message.tool_calls
    assert [(c.name, dict(c.arguments)) for c in calls] == [
        ("search", {"queries": ["a"]}),
        ("open", {"title": "Apple Remote"}),
    ]
    assert len({c.id for c in calls}) == 2


def test_one_call_per_reply_is_asked_on_the_wire(wire):
    replay = _replay(wire, (200, wire.calls([("search", {"queries": ["a"]})])))
    settings = {"max_tokens": 64, "tool_choice": "auto", "parallel_tool_calls": False}
    asyncio.run(wire.model(replay.transport()).request(HISTORY, [SEARCH, OPEN], settings))
    body = json.loads(replay.requests[0].content)
    if wire.name == "openai":
        assert body["parallel_tool_calls"] is False and body["tool_choice"] == "auto"
    else:
        assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    default = _replay(wire, (200, wire.calls([("search", {"queries": ["a"]})])))
    _request(wire.model(default.transport()))
    assert "parallel_tool_calls" not in json.loads(default.requests[0].content)


def test_usage_with_cache_tokens_is_priced_apart(wire):
    replay = _replay(wire, (200, wire.calls([("search", {"queries": ["a"]})])))
    u = _request(wire.model(replay.transport())).usage
    e = wire.usage_expect
    assert (u.input_tokens, u.output_tokens, u.cached_input_tokens, u.cache_write_tokens) == (
        e["input"],
        e["output"],
        e["cached"],
        e["write"],
    )
    price = ModelPrice.of(input=3, output=15, cached_input=0.3, cache_write=3.75)
    plain = e["input"] - e["cached"] - e["write"]
    expected = (
        Decimal(plain) * 3
        + Decimal(e["cached"]) * Decimal("0.3")
        + Decimal(e["write"]) * Decimal("3.75")
        + Decimal(e["output"]) * 15
    ) / 1_000_000
    assert (
        price.cost(u.input_tokens, u.output_tokens, u.cached_input_tokens, u.cache_write_tokens) == expected
    )


def test_a_client_error_is_not_retried(wire):
    replay = _replay(wire, (400, {"error": {"type": "invalid_request_error", "message": "bad tool schema"}}))
    with pytest.raises(ModelError, match="bad tool schema"):
        _request(wire.model(replay.transport()))
    assert len(replay.requests) == 1


@pytest.mark.parametrize("first", [429, 500, 503, 529])
def test_retries_on_rate_limits_and_server_errors(wire, first):
    err = {"error": {"type": "overloaded_error", "message": "busy"}}
    replay = _replay(wire, (first, err), (first, err), (200, wire.text("Paris")))
    ledger = Ledger()
    response = _request(wire.model(replay.transport()), choice="auto", ledger=ledger)
    assert response.message.content == "Paris" and len(replay.requests) == 3
    assert ledger.usage().llm_calls == 3  # every request the server saw is a call


def test_a_retry_is_reserved_like_a_call_and_refused_when_it_does_not_fit(wire):
    err = {"error": {"type": "overloaded_error", "message": "busy"}}
    replay = _replay(wire, (500, err), (200, wire.text("Paris")))
    ledger = Ledger(Budget(llm_calls=1))
    with pytest.raises(Exception, match="llm_calls"):
        _request(wire.model(replay.transport()), choice="auto", ledger=ledger)
    assert len(replay.requests) == 1 and ledger.usage().llm_calls == 1  # the retry never reached the server


def test_timeouts_are_retried_then_reported(wire):
    replay = _replay(wire, wire.lib.ReadTimeout("slow"), (200, wire.text("ok")))
    ledger = Ledger(Budget(total_tokens=100_000))
    assert _request(wire.model(replay.transport()), choice="auto", ledger=ledger).message.content == "ok"
    u = ledger.usage()
    # the timed-out attempt may have been billed: charged as reserved (its input and output bound), then the retry
    assert u.llm_calls == 2 and u.output_tokens >= 64 + 5
    always = _replay(wire, wire.lib.ReadTimeout("slow"))
    with pytest.raises(ModelError):
        _request(wire.model(always.transport(), max_attempts=3), choice="auto")
    assert len(always.requests) == 3


def test_streaming_gives_text_calls_and_usage(wire):
    replay = _replay(wire, (200, wire.stream()))
    response = _request(wire.model(replay.transport(), stream=True), choice="auto")
    assert response.message.content == "Hello"
    assert [(c.name, dict(c.arguments)) for c in response.message.tool_calls] == [
        ("search", {"queries": ["x"]})
    ]
    assert (response.usage.input_tokens, response.usage.output_tokens) == (40, 12)
    assert json.loads(replay.requests[0].content)["stream"] is True


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_live_provider_when_a_key_is_set(provider):
    key = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}[provider]
    if not os.environ.get(key):
        pytest.skip(f"{key} is not set: live {provider} test skipped")
    model = OpenAIModel("gpt-4.1-mini") if provider == "openai" else AnthropicModel("claude-haiku-4-5")
    response = asyncio.run(
        model.request(
            [Message.user("Find the Apple Remote's designer.")],
            [SEARCH],
            {"max_tokens": 128, "tool_choice": "required"},
        )
    )
    assert response.message.tool_calls[0].name == "search" and response.usage.input_tokens > 0


# Every ModelSettings field, and where each backend puts it on the wire (None: not a body field: the client
# timeout, or a setting the provider has no such parameter for). Settings that the installed SDK no longer
# accepts must be listed in NOT_ACCEPTED: a parameter an SDK release removes fails here by name.
FULL_SETTINGS = {
    "max_tokens": 64,
    "temperature": 0.0,
    "top_p": 0.9,
    "seed": 7,
    "stop": ["END"],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "timeout": 30.0,
    "stream": False,
    "entropy": True,
    "json_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
WIRE_NAMES = {
    "openai": {
        "max_tokens": "max_completion_tokens",
        "temperature": "temperature",
        "top_p": "top_p",
        "seed": "seed",
        "stop": "stop",
        "tool_choice": "tool_choice",
        "parallel_tool_calls": "parallel_tool_calls",
        "timeout": None,
        "stream": "stream",
        "entropy": "logprobs",  # with top_logprobs: 20
        "json_schema": "response_format",
    },
    "anthropic": {
        "max_tokens": "max_tokens",
        "temperature": "temperature",
        "top_p": "top_p",
        "seed": None,  # the Messages API has no seed
        "stop": "stop_sequences",
        "tool_choice": "tool_choice",
        "parallel_tool_calls": "tool_choice",  # disable_parallel_tool_use inside tool_choice
        "timeout": None,
        "stream": "stream",
        "entropy": None,  # the Messages API returns no logprobs: SALE's entropy term is 0 for Claude
        "json_schema": None,  # no constrained decoding on the Messages API: the prompt says it
    },
}
NOT_ACCEPTED = {"openai": set(), "anthropic": {"temperature", "top_p"}}  # anthropic SDK 2.x dropped them


def test_the_suite_covers_every_model_setting():
    from budgetgraph.models.messages import ModelSettings

    assert set(FULL_SETTINGS) == set(ModelSettings.__annotations__)
    assert all(set(names) == set(FULL_SETTINGS) for names in WIRE_NAMES.values())


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_every_setting_goes_through_the_installed_sdk(wire, stream):
    from budgetgraph.models.sdk_params import accepted_params

    replay = _replay(wire, (200, wire.stream() if stream else wire.calls([("search", {"queries": ["a"]})])))
    model = wire.model(replay.transport())
    settings = dict(FULL_SETTINGS, stream=stream)
    response = asyncio.run(model.request(HISTORY, [SEARCH, OPEN], settings))
    assert response.message.tool_calls  # the SDK took the call and the reply parsed
    body = json.loads(replay.requests[0].content)
    method = model.client.chat.completions.create if wire.name == "openai" else model.client.messages.create
    accepted = accepted_params(method)
    for key, wire_name in WIRE_NAMES[wire.name].items():
        if wire_name is None:
            continue
        if key in NOT_ACCEPTED[wire.name]:
            assert accepted is not None and wire_name not in accepted, (
                f"{wire.name} SDK accepts {wire_name} again: remove it from NOT_ACCEPTED"
            )
            assert wire_name not in body
            continue
        assert accepted is None or wire_name in accepted, (
            f"the installed {wire.name} SDK no longer accepts {wire_name!r} (for ModelSettings[{key!r}])"
        )
        if key != "stream" or stream:  # a plain request leaves stream out
            assert wire_name in body, f"{key} was not sent as {wire_name}"
    if wire.name == "openai":
        assert body["max_completion_tokens"] == 64 and body["seed"] == 7 and body["stop"] == ["END"]
        assert body["parallel_tool_calls"] is False and body["temperature"] == 0.0
        assert body["response_format"]["json_schema"]["schema"] == FULL_SETTINGS["json_schema"]
    else:
        assert body["max_tokens"] == 64 and body["stop_sequences"] == ["END"]
        assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert body.get("stream", False) is stream


def test_the_reply_entropy_comes_from_the_servers_top_logprobs():
    wire = OpenAIWire()
    reply = wire.text("Plan: 1. read")
    two = [
        {"token": "a", "logprob": math.log(0.5), "bytes": None},
        {"token": "b", "logprob": math.log(0.5), "bytes": None},
    ]
    one = [{"token": "c", "logprob": 0.0, "bytes": None}]
    reply["choices"][0]["logprobs"] = {
        "content": [
            {"token": "a", "logprob": math.log(0.5), "bytes": None, "top_logprobs": two},
            {"token": "c", "logprob": 0.0, "bytes": None, "top_logprobs": one},
        ]
    }
    replay = _replay(wire, (200, reply))
    response = asyncio.run(
        wire.model(replay.transport()).request(HISTORY, [], {"max_tokens": 20, "entropy": True})
    )
    body = json.loads(replay.requests[0].content)
    assert body["logprobs"] is True and body["top_logprobs"] == 20
    assert response.entropy == pytest.approx((math.log(2) + 0.0) / 2)
    plain = _replay(wire, (200, wire.text("x")))
    assert asyncio.run(wire.model(plain.transport()).request(HISTORY, [], {"max_tokens": 5})).entropy is None
    assert "logprobs" not in json.loads(plain.requests[0].content)


def _prompt_tokens(payload: dict, n: int) -> dict:
    """``payload`` with its usage's prompt count set to ``n`` (OpenAI's or Anthropic's field)."""
    usage = payload["usage"]
    usage["prompt_tokens" if "prompt_tokens" in usage else "input_tokens"] = n
    if "total_tokens" in usage:
        usage["total_tokens"] = n + usage["completion_tokens"]
    return payload


def test_an_agent_with_its_default_settings_runs_on_every_backend(wire):
    """The agent's own defaults (temperature 0) through the real SDK: a search, then an answer."""
    from budgetgraph import Agent, Budget, tool

    @tool
    def search(queries: list[str]) -> str:
        """Search."""
        return "The Apple Remote was designed by Apple's industrial design group."

    replay = _replay(
        wire,  # the tracker's prompt is about 2,000 tokens: an honest server says so
        (200, _prompt_tokens(wire.calls([("search", {"queries": ["apple remote"]})]), 1800)),
        (200, _prompt_tokens(wire.text("<answer>Apple</answer>"), 1900)),
    )
    agent = Agent(
        wire.model(replay.transport()), [search], Budget(tool_calls={"search": 2}), planner="tracker"
    )
    result = agent.run("Who designed the Apple Remote?")
    assert result.answer == "Apple" and result.stop_reason.kind == "answered"
    assert len(replay.requests) == 2 and result.usage.llm_calls == 2


def test_anthropic_prompt_caching_marks_breakpoints_and_reserves_the_worst_split():
    from budgetgraph.budget.prices import CacheBound

    wire = AnthropicWire()
    price = ModelPrice.of(input=3, output=15, cached_input=0.3, cache_write=3.75)
    for cache in (False, True):
        # a reply whose whole input was written to the cache: the dearest split Anthropic can report
        replay = _replay(wire, (200, wire.calls([("search", {"queries": ["a"]})], usage=(5, 10, 0, 95))))
        model = wire.model(replay.transport(), price=price, cache_prompt=cache)
        ledger = Ledger(Budget(usd="1"))
        meter = ModelMeter(model, ledger)
        n_in = meter.count(HISTORY, [SEARCH, OPEN])
        reserved = meter.plan(n_in, 64).amounts["usd"]
        expected = CacheBound(price).cost(n_in, 64) if cache else price.cost(n_in, 64)
        assert reserved == expected and (reserved > price.cost(n_in, 64)) is cache
        _request(model, ledger=ledger)
        body = json.loads(replay.requests[0].content)
        marked = [
            b for m in body["messages"] for b in m["content"] if isinstance(b, dict) and "cache_control" in b
        ]
        if cache:
            assert body["system"] == [
                {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}
            ]
            assert marked == [body["messages"][-1]["content"][-1]]  # one breakpoint, on the last block
        else:
            assert body["system"] == "Be brief." and not marked
        assert Decimal(ledger.snapshot()["spent"]["usd"]) == price.cost(100, 10, 0, 95)
