"""A fake OpenAI-compatible chat-completions server on 127.0.0.1 that can lie, for cap tests against ground
truth: its request log and the usage it reported are what a provider would bill.

Modes: ``normal`` (a token per 4 characters), ``cjk`` (a token per character, as a CJK tokenizer counts),
``overmax`` (ignores max_tokens: reports 3x), ``nousage`` (no usage field), ``stall`` (sleeps ``stall`` s);
``fail`` is a list of status codes answered first (429, 500, ...). ``lie(usage, n)`` rewrites the usage it
reports for request ``n`` (None: none at all); its log keeps what it really served, the ground truth. While
tools are offered it calls ``search`` (or ``tool``); otherwise it answers.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Lie = Callable[[dict[str, Any], int], Any]


class FakeOpenAI:
    def __init__(
        self,
        mode: str = "normal",
        *,
        fail: list[int] | None = None,
        stall: float = 0.0,
        lie: Lie | None = None,
        tool: str = "search",
    ) -> None:
        self.mode = mode
        self.fail = list(fail or [])
        self.stall = stall
        self.lie = lie
        self.tool = tool
        self.requests: list[dict[str, Any]] = []  # every request received, with the usage reported for it
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                owner._answer(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- ground truth ------------------------------------------------------------------------------
    def billed(self, key: str) -> int:
        return sum(r["usage"].get(key, 0) for r in self.requests if r.get("usage"))

    @property
    def calls(self) -> int:
        return len(self.requests)

    def _answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        record: dict[str, Any] = {"max_tokens": body.get("max_tokens") or body.get("max_completion_tokens")}
        self.requests.append(record)
        if self.fail:
            status = self.fail.pop(0)
            record["status"] = status
            _send(handler, status, {"error": {"message": "try again", "type": "server_error"}})
            return
        if self.stall:
            time.sleep(self.stall)
        chars = sum(len(m.get("content") or "") for m in body["messages"]) + len(
            json.dumps(body.get("tools", []))
        )
        limit = int(record["max_tokens"] or 100)
        completion = 3 * limit if self.mode == "overmax" else min(limit, 60)
        text = "<answer>Paris " + "word " * max(completion - 6, 0) + "</answer>"  # about what it bills
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if body.get("tools") and body.get("tool_choice") != "none":
            call = {"id": f"c{len(self.requests)}", "type": "function"}
            call["function"] = {
                "name": self.tool,
                "arguments": json.dumps({"queries": ["capital of France"]}),
            }
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            if self.mode != "overmax":  # an honest count of the call it sends
                completion = min(completion, 4 + len(json.dumps(call["function"])) // 4)
        prompt = chars if self.mode == "cjk" else chars // 4
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        out: dict[str, Any] = {
            "id": "x",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        }
        if self.mode != "nousage":
            record["usage"] = usage  # what it served: the ground truth
            reported = usage if self.lie is None else self.lie(dict(usage), len(self.requests) - 1)
            record["reported"] = reported
            if reported is not None:
                out["usage"] = reported
        if body.get("stream"):
            _send_stream(handler, out, message, out.get("usage"))
            return
        _send(handler, 200, out)


def _send(handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
        pass


def _send_stream(
    handler: BaseHTTPRequestHandler,
    out: dict[str, Any],
    message: dict[str, Any],
    usage: dict[str, Any] | None,
) -> None:
    """The same reply as server-sent chunks: the text or the tool call, then the usage (if any)."""
    base = {
        "id": out["id"],
        "object": "chat.completion.chunk",
        "created": out["created"],
        "model": out["model"],
    }
    delta: dict[str, Any] = {"role": "assistant"}
    if message.get("tool_calls"):
        call = message["tool_calls"][0]
        delta["tool_calls"] = [
            {"index": 0, "id": call["id"], "type": "function", "function": call["function"]}
        ]
    else:
        delta["content"] = message["content"]
    chunks = [{**base, "choices": [{"index": 0, "delta": delta, "finish_reason": "stop"}]}]
    if usage is not None:
        chunks.append({**base, "choices": [], "usage": usage})
    data = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks).encode() + b"data: [DONE]\n\n"
    try:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
