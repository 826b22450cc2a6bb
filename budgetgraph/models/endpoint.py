"""A small OpenAI-compatible endpoint over any chat model (the embedded one by default), tool calls included.

``budgetgraph serve`` runs it on 127.0.0.1, so an app, another framework or ``openai:MODEL@URL`` can use the
embedded model with tools offline: llama-cpp-python's own server drops the tools under the model's template,
and its function-calling format refuses ``tool_choice="required"``. ``POST /v1/chat/completions`` (streamed
or not; a streamed reply is sent in one content or tool-call chunk once it is done) and ``GET /v1/models``.
Requests are hostile until checked: a malformed one gets a 400 with an OpenAI-style error object.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .._redact import redact
from .base import ChatModel
from .messages import Message, ModelResponse, ModelSettings, ToolCall, ToolSchema

__all__ = ["BadRequest", "EndpointServer", "parse_request", "serve_model"]

_log = logging.getLogger(__name__)
MAX_BODY = 4_000_000
_ROLES = ("system", "developer", "user", "assistant", "tool")


class BadRequest(ValueError):
    """A request the endpoint cannot serve; its text goes back to the client in a 400."""


def _text(content: Any, where: str) -> str:
    """A message's content: a string, or a list of text parts (images are not served)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if (
                not isinstance(part, Mapping)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise BadRequest(f"{where}: only text content parts are served")
            parts.append(part["text"])
        return "".join(parts)
    raise BadRequest(f"{where}: content must be a string or a list of text parts")


def _calls(raw: Any, where: str) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise BadRequest(f"{where}.tool_calls must be a list")
    calls = []
    for i, call in enumerate(raw):
        fn = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            raise BadRequest(f"{where}.tool_calls[{i}] needs function.name")
        arguments = fn.get("arguments") or "{}"
        try:
            parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
        except json.JSONDecodeError:
            raise BadRequest(f"{where}.tool_calls[{i}].function.arguments is not JSON") from None
        if not isinstance(parsed, Mapping):
            raise BadRequest(f"{where}.tool_calls[{i}].function.arguments must be a JSON object")
        calls.append(ToolCall(str(call.get("id") or f"call_{i}"), fn["name"], dict(parsed)))
    return tuple(calls)


def _message(raw: Any, i: int) -> Message:
    where = f"messages[{i}]"
    if not isinstance(raw, Mapping) or raw.get("role") not in _ROLES:
        raise BadRequest(f"{where} needs a role of {', '.join(_ROLES)}")
    role = raw["role"]
    text = _text(raw.get("content"), where)
    if role in ("system", "developer"):
        return Message.system(text)
    if role == "user":
        return Message.user(text)
    if role == "assistant":
        return Message.assistant(text, _calls(raw.get("tool_calls"), where))
    call_id = raw.get("tool_call_id")
    if not isinstance(call_id, str):
        raise BadRequest(f"{where}: a tool message needs tool_call_id")
    name = raw.get("name")
    return Message.tool(text, call_id, name if isinstance(name, str) else None)


def _tools(raw: Any) -> list[ToolSchema]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest("tools must be a list")
    tools = []
    for i, tool in enumerate(raw):
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            raise BadRequest(f"tools[{i}] needs type 'function' and function.name")
        parameters = fn.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(parameters, Mapping):
            raise BadRequest(f"tools[{i}].function.parameters must be a JSON schema object")
        tools.append(ToolSchema(fn["name"], str(fn.get("description") or ""), dict(parameters)))
    return tools


def _choice(raw: Any, tools: Sequence[ToolSchema]) -> str:
    if raw is None:
        return "auto"
    if raw in ("auto", "none", "required"):
        return str(raw)
    fn = raw.get("function") if isinstance(raw, Mapping) else None
    name = fn.get("name") if isinstance(fn, Mapping) else None
    if not isinstance(name, str) or name not in {t.name for t in tools}:
        raise BadRequest(
            "tool_choice must be auto, none, required or {type: function, function: {name}} of a tool"
        )
    return name


def _count(body: Mapping[str, Any], key: str, low: int, high: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadRequest(f"{key} must be a whole number from {low} to {high}")
    return value


def parse_request(body: Any) -> tuple[list[Message], list[ToolSchema], ModelSettings, bool]:
    """An OpenAI chat-completions body as messages, tools, settings and whether to stream; BadRequest if not."""
    if not isinstance(body, Mapping):
        raise BadRequest("the body must be a JSON object")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise BadRequest("messages must be a non-empty list")
    messages = [_message(m, i) for i, m in enumerate(raw_messages)]
    tools = _tools(body.get("tools"))
    settings: ModelSettings = {"tool_choice": _choice(body.get("tool_choice"), tools)}
    most = _count(body, "max_completion_tokens", 1, 32768) or _count(body, "max_tokens", 1, 32768)
    settings["max_tokens"] = most or 512
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is not None:
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 2:
                raise BadRequest(f"{key} must be a number from 0 to 2")
            settings[key] = float(value)  # type: ignore[literal-required]
    if (seed := _count(body, "seed", 0, 2**31 - 1)) is not None:
        settings["seed"] = seed
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops) or len(stops) > 4:
            raise BadRequest("stop must be a string or a list of up to 4 strings")
        settings["stop"] = list(stops)
    if body.get("parallel_tool_calls") is False:
        settings["parallel_tool_calls"] = False
    return messages, tools, settings, bool(body.get("stream"))


def _reply(response: ModelResponse, model: str, rid: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": response.message.content or None}
    if response.message.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id or f"call_{uuid.uuid4().hex[:12]}",
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(dict(call.arguments))},
            }
            for call in response.message.tool_calls
        ]
    finish = {"tool_calls": "tool_calls", "length": "length"}.get(response.finish_reason or "", "stop")
    usage = response.usage
    return {
        "id": rid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        },
    }


def _chunks(reply: Mapping[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """The reply as stream chunks: its content (or tool calls), the finish reason, then the usage."""
    base = {
        "id": reply["id"],
        "object": "chat.completion.chunk",
        "created": reply["created"],
        "model": reply["model"],
    }
    choice = reply["choices"][0]
    delta: dict[str, Any] = {"role": "assistant"}
    if choice["message"].get("content"):
        delta["content"] = choice["message"]["content"]
    if choice["message"].get("tool_calls"):
        delta["tool_calls"] = [dict(c, index=i) for i, c in enumerate(choice["message"]["tool_calls"])]
    out = [
        dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": None}]),
        dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]),
    ]
    if include_usage:
        out.append(dict(base, choices=[], usage=reply["usage"]))
    return out


MAX_CONNECTIONS = 64
"""Connections served at once; one more is answered 503 and closed (each holds a thread)."""
READ_TIMEOUT = 10.0
"""Seconds a connection may take to send its request line, headers or body (a stalled one is closed)."""
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


class EndpointServer(ThreadingHTTPServer):
    """The HTTP server: one model, requests served one at a time on it (a CPU engine is serial anyway). It
    serves at most :data:`MAX_CONNECTIONS` connections at once, closes one that stalls for
    :data:`READ_TIMEOUT` seconds, and refuses a request from a web page (an ``Origin`` header) or one whose
    ``Host`` is not this server's (DNS rebinding): there is no authentication, so only local programs may call."""

    daemon_threads = True

    def __init__(
        self, model: ChatModel, host: str = "127.0.0.1", port: int = 0, name: str | None = None
    ) -> None:
        super().__init__((host, port), _Handler)
        self.model = model
        self.model_name = name or model.name
        self.lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.hosts = {*_LOOPBACK, host.lower()}

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):  # full: answered at once, on this thread, and closed
            with contextlib.suppress(OSError):
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def allowed_host(self, value: str | None) -> bool:
        """Whether a request's ``Host`` names this server (a loopback name, or the address it listens on); a
        request with none (HTTP/1.0, a raw client) is not a browser's and is served."""
        if value is None:
            return True
        name = value.strip().lower()
        if name.startswith("["):
            name = name.split("]")[0] + "]"
        elif name.count(":") == 1:
            name = name.split(":")[0]
        return name in self.hosts

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/v1" if isinstance(host, str) else f"http://{host.decode()}:{port}/v1"

    def complete(self, body: Any) -> dict[str, Any]:
        messages, tools, settings, _ = parse_request(body)
        with self.lock:
            response = asyncio.run(self.model.request(messages, tools, settings))
        return _reply(response, self.model_name, f"chatcmpl-{uuid.uuid4().hex[:24]}")


class _Handler(BaseHTTPRequestHandler):
    server: EndpointServer
    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT

    def _send(self, status: int, payload: Mapping[str, Any], close: bool = False) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if close:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client went away: nothing to answer
            self.close_connection = True
        if close:
            self.close_connection = True

    def _error(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        """An error answer; the connection is closed after it (a body left unread must never be taken for
        the next request)."""
        self._send(
            status, {"error": {"message": message, "type": kind, "param": None, "code": None}}, close=True
        )

    def _refused(self) -> bool:
        """Refuse a request a web page sent (``Origin``) or one for another host name (DNS rebinding)."""
        if self.headers.get("Origin") is not None:
            self._error(403, "requests from web pages (an Origin header) are refused", "permission_error")
            return True
        if not self.server.allowed_host(self.headers.get("Host")):
            self._error(403, "the Host header does not name this server", "permission_error")
            return True
        return False

    def do_GET(self) -> None:
        if self._refused():
            return
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            model = {"id": self.server.model_name, "object": "model", "created": 0, "owned_by": "budgetgraph"}
            self._send(200, {"object": "list", "data": [model]})
        else:
            self._error(404, f"no route {self.path}; this endpoint serves POST /v1/chat/completions")

    def do_POST(self) -> None:
        if self._refused():
            return
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"no route {self.path}; this endpoint serves POST /v1/chat/completions")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY:
            self._error(
                400 if length <= MAX_BODY else 413, f"the body needs a Content-Length from 1 to {MAX_BODY}"
            )
            return
        try:
            raw = self.rfile.read(length)
        except OSError:  # the body stalled past the read timeout, or the client left
            self.close_connection = True
            return
        try:
            body = json.loads(raw)
            stream = isinstance(body, Mapping) and bool(body.get("stream"))
            reply = self.server.complete(body)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            self._error(400, "the body is not JSON")
            return
        except BadRequest as exc:
            self._error(400, str(exc))
            return
        except Exception as exc:  # the model failed: the client sees a server error it can retry
            _log.warning("budgetgraph serve: the model failed: %s", redact(f"{type(exc).__name__}: {exc}"))
            self._error(
                500,
                f"the model failed ({type(exc).__name__}); the server's log has the details",
                "server_error",
            )
            return
        if not stream:
            self._send(200, reply)
            return
        options = body.get("stream_options")
        include_usage = isinstance(options, Mapping) and bool(options.get("include_usage"))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for chunk in _chunks(reply, include_usage):
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def serve_model(
    model: ChatModel, host: str = "127.0.0.1", port: int = 0, name: str | None = None
) -> EndpointServer:
    """An endpoint serving ``model`` on host:port (0: a free port), started on a daemon thread."""
    server = EndpointServer(model, host, port, name)
    threading.Thread(target=server.serve_forever, daemon=True, name="budgetgraph-endpoint").start()
    return server
