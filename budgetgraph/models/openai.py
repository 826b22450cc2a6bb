"""OpenAI and any OpenAI-compatible server (vLLM ``serve``, llama.cpp server, Ollama) via the ``openai`` SDK.

``request`` makes one attempt: the metering layer retries (429, 5xx, timeouts, lost connections) and reserves
each attempt as a call; the SDK's own retries are off. Input tokens are counted with tiktoken for OpenAI's
own models (or the ``tokenizer`` given), else bounded from above. Servers that leave tool calls in the
message text (llama.cpp with ``tool_choice="auto"``) are handled by parsing the text.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from .._extras import require
from .._redact import remember_secret
from ..budget.prices import ModelPrice
from ..errors import ConfigError
from .base import Failure, emit_delta, upper_bound_tokens
from .messages import (
    Message,
    ModelResponse,
    ModelSettings,
    RequestUsage,
    ToolCall,
    ToolSchema,
    reported_count,
    to_openai_messages,
    to_openai_tools,
)
from .sdk_params import keep_accepted
from .toolparse import make_call, new_call_id, parse_tool_calls

__all__ = ["OpenAIModel"]

_OFFICIAL = "api.openai.com"


log = logging.getLogger("budgetgraph.models")
Tokenizer = Callable[[str], int]


@lru_cache(maxsize=16)
def _tiktoken(model: str, encoding: str | None) -> Tokenizer | None:
    """tiktoken's counter for ``model`` (or the named encoding); None when tiktoken cannot load it
    (not installed, an unknown model, or its encoding file cannot be downloaded)."""
    try:
        import tiktoken

        enc = tiktoken.get_encoding(encoding) if encoding else tiktoken.encoding_for_model(model)
    except Exception as exc:  # KeyError (unknown model), ImportError, or no network for the BPE file
        log.debug("no tiktoken encoding for %s (%s): input tokens are bounded from above", model, exc)
        return None
    return lambda text: len(enc.encode(text, disallowed_special=()))


def count_chat_tokens(count: Tokenizer, messages: Sequence[Message], tools: Sequence[ToolSchema]) -> int:
    """OpenAI's chat framing (3 tokens a message, 3 to prime the reply) over counted text, with room for
    the server's rendering of tool schemas (their JSON counted, plus 16 a tool)."""
    import json

    total = 3
    for m in messages:
        total += 4 + count(m.content) + (count(m.name) if m.name else 0)
        for c in m.tool_calls:
            total += 8 + count(c.name) + count(json.dumps(dict(c.arguments), ensure_ascii=False))
    for t in tools:
        total += 16 + count(
            json.dumps({"name": t.name, "description": t.description, "parameters": dict(t.parameters)})
        )
    return total


class OpenAIModel:
    """A chat-completions model. ``base_url=None`` means OpenAI itself (``OPENAI_API_KEY``)."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        price: ModelPrice | None = None,
        timeout: float = 120.0,
        max_attempts: int = 4,
        backoff: float = 0.5,
        stream: bool = False,
        client: Any = None,
        tokenizer: str | Tokenizer | None = None,
    ) -> None:
        openai = require("openai", "openai")
        self.name = model
        self.base_url = base_url
        self.price = price
        self.stream = stream
        self.max_attempts = max_attempts
        self.backoff = backoff
        self._official = base_url is None or _OFFICIAL in base_url
        self.provider = "openai" if self._official else None  # a self-hosted model has no list price
        self._tokenizer = tokenizer
        key = api_key or os.environ.get("OPENAI_API_KEY") or ("" if self._official else "sk-no-key-required")
        remember_secret(key)  # masked wherever it would be echoed (an error body, a trace)
        if client is None and not key:
            raise ConfigError(
                f"model 'openai:{model}' needs OPENAI_API_KEY (export it, or pass api_key=); for a local "
                "OpenAI-compatible server (llama.cpp, vLLM, Ollama) use openai:MODEL@http://HOST:PORT/v1"
            )
        self.client = client or openai.AsyncOpenAI(
            base_url=base_url, api_key=key or None, max_retries=0, timeout=timeout
        )

    def _counter(self) -> Tokenizer | None:
        if callable(self._tokenizer):
            return self._tokenizer
        if isinstance(self._tokenizer, str) or self._official:
            return _tiktoken(self.name, self._tokenizer if isinstance(self._tokenizer, str) else None)
        return None

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSchema]) -> int:
        """tiktoken's count for OpenAI models (or the ``tokenizer`` given), else a proven upper bound."""
        count = self._counter()
        if count is None:
            return upper_bound_tokens(messages, tools)
        return count_chat_tokens(count, messages, tools)

    def failure(self, exc: BaseException) -> Failure:
        """429 and 5xx: seen by the server, not billed, retried; a timeout may have been billed; a refused
        connection reached nothing; other API errors (400, 401, ...) are final."""
        openai = require("openai", "openai")
        if isinstance(exc, openai.APITimeoutError):
            return Failure(retryable=True, reached=True, may_bill=True)
        if isinstance(exc, openai.APIConnectionError):
            return Failure(retryable=True)
        if isinstance(exc, openai.APIStatusError):
            return Failure(retryable=exc.status_code == 429 or exc.status_code >= 500, reached=True)
        return Failure()

    def _params(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema], settings: ModelSettings
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.name, "messages": to_openai_messages(messages)}
        if tools and settings.get("tool_choice") != "none":
            params["tools"] = to_openai_tools(tools)
            choice: Any = settings.get("tool_choice", "auto")
            if choice not in ("auto", "required"):
                choice = {"type": "function", "function": {"name": choice}}
            params["tool_choice"] = choice
            if "parallel_tool_calls" in settings:
                params["parallel_tool_calls"] = settings["parallel_tool_calls"]
        if "max_tokens" in settings:
            params["max_completion_tokens" if self._official else "max_tokens"] = settings["max_tokens"]
        for key in ("temperature", "top_p", "seed", "stop"):  # "stream" is handled by request()
            if key in settings:
                params[key] = settings[key]  # type: ignore[literal-required]
        if "timeout" in settings:
            params["timeout"] = settings["timeout"]
        if settings.get("entropy"):
            params["logprobs"] = True
            params["top_logprobs"] = 20
        if "json_schema" in settings:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": settings["json_schema"]},
            }
        return params

    async def request(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema], settings: ModelSettings
    ) -> ModelResponse:
        params = keep_accepted(
            self._params(messages, tools, settings),
            self.client.chat.completions.create,
            backend=f"openai ({self.name})",
        )
        names = [t.name for t in tools]
        if self.stream or settings.get("stream"):
            return await self._stream(params, names, settings.get("max_tokens"))
        return self._convert(await self.client.chat.completions.create(**params), names)

    def _convert(self, completion: Any, names: Sequence[str]) -> ModelResponse:
        choice = completion.choices[0]
        msg = choice.message
        calls = tuple(
            _call(c.id, c.function.name, c.function.arguments, names) for c in (msg.tool_calls or [])
        )
        text = msg.content or ""
        if not calls and names and text:
            parsed = parse_tool_calls(text, names)
            calls, text = parsed.calls, (parsed.text if parsed.calls else text)
        return ModelResponse(
            Message.assistant(text, calls),
            _usage(completion.usage),
            completion.model,
            choice.finish_reason,
            _entropy(getattr(choice, "logprobs", None)),
        )

    async def _stream(self, params: dict[str, Any], names: Sequence[str], limit: int | None) -> ModelResponse:
        """Stream the reply; it is cut once the deltas pass ``limit`` (a server that ignores max_tokens)."""
        params = dict(params, stream=True, stream_options={"include_usage": True})
        text: list[str] = []
        parts: dict[int, dict[str, str]] = {}
        usage, finish, model = None, None, self.name
        deltas = 0
        stream = await self.client.chat.completions.create(**params)
        async for chunk in stream:
            model = chunk.model or model
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
                delta = choice.delta
                if delta.content:
                    text.append(delta.content)
                    emit_delta(delta.content)
                    deltas += 1
                for tc in delta.tool_calls or []:
                    slot = parts.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                    slot["id"] = tc.id or slot["id"]
                    if tc.function is not None:
                        slot["name"] += tc.function.name or ""
                        slot["arguments"] += tc.function.arguments or ""
                        deltas += 1
            if limit is not None and deltas > limit and usage is None:
                finish = "length"  # every delta is at least one token: the bound is passed, stop reading
                await stream.close()
                break
        calls = tuple(_call(p["id"], p["name"], p["arguments"], names) for _, p in sorted(parts.items()))
        content = "".join(text)
        if not calls and names and content:
            parsed = parse_tool_calls(content, names)
            calls, content = parsed.calls, (parsed.text if parsed.calls else content)
        message = Message.assistant(content, calls)
        if (
            usage is None
        ):  # no usage (llama.cpp ignores stream_options, or the stream was cut): counted locally
            return ModelResponse(message, RequestUsage(estimated=True), model, finish)
        return ModelResponse(message, _usage(usage), model, finish)


def _call(call_id: str | None, name: str, arguments: str | None, names: Sequence[str]) -> ToolCall:
    return make_call(call_id or new_call_id(), name, arguments or "", names)


def _entropy(logprobs: Any) -> float | None:
    """Mean per-token entropy (nats) from a choice's top logprobs, each token's top-k renormalised (a lower
    bound of the full distribution's); None when the server sent none."""
    content = getattr(logprobs, "content", None) if logprobs is not None else None
    if not content:
        return None
    values = []
    for token in content:
        tops = [math.exp(t.logprob) for t in (getattr(token, "top_logprobs", None) or [])]
        z = sum(tops)
        if z > 0:
            values.append(-sum(p / z * math.log(p / z) for p in tops if p > 0))
    return sum(values) / len(values) if values else None


def _usage(usage: Any) -> RequestUsage:
    if usage is None:  # the server reported none: the metering layer counts the call itself
        return RequestUsage(estimated=True)
    faults: list[str] = []
    details = getattr(usage, "prompt_tokens_details", None)
    cached = (
        reported_count("cached_tokens", getattr(details, "cached_tokens", None), faults, required=False)
        if details is not None
        else 0
    )
    return RequestUsage(
        reported_count("prompt_tokens", getattr(usage, "prompt_tokens", None), faults),
        reported_count("completion_tokens", getattr(usage, "completion_tokens", None), faults),
        cached,
        fault=", ".join(faults) or None,
    )
