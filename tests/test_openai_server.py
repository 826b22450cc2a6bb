"""The OpenAI-compatible backend against real HTTP servers on 127.0.0.1: llama.cpp's server with the embedded
model, and a tiny server that answers 429 / 500 first to exercise the retries."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from budgetgraph import Agent, Budget, ModelError
from budgetgraph.budget import Ledger
from budgetgraph.meter import ModelMeter
from budgetgraph.models.messages import Message, ToolSchema

openai = pytest.importorskip("openai", reason="needs pip install 'budgetgraph[openai]'")
from budgetgraph.models.openai import OpenAIModel  # noqa: E402

SEARCH = ToolSchema(
    "search",
    "Search documents.",
    {
        "type": "object",
        "properties": {"queries": {"type": "array", "items": {"type": "string"}}},
        "required": ["queries"],
    },
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server():
    pytest.importorskip("llama_cpp.server", reason="needs pip install 'llama-cpp-python[server]'")
    from budgetgraph.models.local_assets import default_model_path

    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "budgetgraph.models.llama_server",
            "--model",
            str(default_model_path()),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "4096",
            "--model_alias",
            "qwen-local",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("llama_cpp.server exited during start-up")
            time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.mark.model
def test_forced_tool_choice_returns_tool_calls(llama_server):
    model = OpenAIModel("qwen-local", base_url=llama_server)
    msgs = [Message.user("Find who founded Apple.")]
    r = asyncio.run(model.request(msgs, [SEARCH], {"max_tokens": 64, "tool_choice": "required"}))
    assert r.message.tool_calls and r.message.tool_calls[0].name == "search"
    assert isinstance(r.message.tool_calls[0].arguments.get("queries"), list)
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0


@pytest.mark.model
def test_streaming_reports_usage(llama_server):
    model = OpenAIModel("qwen-local", base_url=llama_server, stream=True)
    ledger = Ledger(Budget(total_tokens=10_000))
    meter = ModelMeter(model, ledger)
    r = asyncio.run(meter.call([Message.user("Say hello in one word.")], [], {}, role="act", max_tokens=8))
    # llama.cpp's server sends no usage in streams (it ignores stream_options): the meter counts the call
    assert r.message.content and r.usage.estimated
    u = ledger.usage()
    assert 0 < u.output_tokens <= 8 and u.input_tokens > 0


@pytest.mark.model
def test_agent_over_the_server_stays_within_budget(llama_server, hotpot_corpus, hotpot20):
    agent = Agent(
        model=f"openai:qwen-local@{llama_server}",
        tools=hotpot_corpus.tools(
            k=2, max_chars=1000
        ),  # short results: the prompt, not the test, is the point
        budget=Budget(tool_calls={"search": 1, "open": 1}, llm_calls=3),
        max_tokens=128,
    )
    result = agent.run(hotpot20[1]["question"])
    assert result.usage.llm_calls <= 3 and result.usage.llm_calls >= 1
    assert result.usage.tool_calls.get("search", 0) <= 1 and result.usage.tool_calls.get("open", 0) <= 1
    assert result.stop_reason.kind in ("answered", "budget_exhausted", "max_turns")


class _Flaky(BaseHTTPRequestHandler):
    script: list[int] = []
    seen: list[int] = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length", 0)))
        status = self.script.pop(0) if self.script else 200
        self.seen.append(status)
        body = (
            {"error": {"message": "slow down", "type": "rate_limit"}}
            if status != 200
            else {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {
                            "role": "assistant",
                            "content": '{"name": "search", "arguments": {"queries": ["a"]}}',
                        },
                    }
                ],
                "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
            }
        )
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        if status == 429:
            self.send_header("retry-after-ms", "10")
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def flaky_server():
    server = HTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Flaky.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_retries_429_and_5xx_then_parses_calls_from_content(flaky_server):
    _Flaky.script = [429, 500, 503]
    model = OpenAIModel("m", base_url=flaky_server, max_attempts=4, backoff=0.01)
    ledger = Ledger(Budget(llm_calls=10))
    meter = ModelMeter(model, ledger)
    r = asyncio.run(meter.call([Message.user("q")], [SEARCH], {}, role="act", max_tokens=16))
    assert _Flaky.seen == [429, 500, 503, 200]  # one layer of retries: the SDK's own are off
    assert ledger.usage().llm_calls == 4  # what the server saw, every attempt a call
    assert r.message.tool_calls[0].name == "search" and r.message.tool_calls[0].arguments == {
        "queries": ["a"]
    }
    assert r.usage.input_tokens == 11 and r.usage.output_tokens == 7


def test_persistent_failure_becomes_a_clear_model_error(flaky_server):
    _Flaky.script = [500] * 10
    model = OpenAIModel("m", base_url=flaky_server, max_attempts=2, backoff=0.01)
    with pytest.raises(ModelError, match="failed"):
        asyncio.run(ModelMeter(model, Ledger()).call([Message.user("q")], [], {}, role="act", max_tokens=16))
    assert _Flaky.seen == [500, 500]


@pytest.mark.skipif(
    not os.environ.get("OPENAI_API_KEY"), reason="OPENAI_API_KEY is not set: live OpenAI test skipped"
)
def test_live_openai():
    r = asyncio.run(OpenAIModel("gpt-4.1-nano").request([Message.user("Say OK.")], [], {"max_tokens": 5}))
    assert r.usage.input_tokens > 0
