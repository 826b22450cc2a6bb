"""OpenAI and any OpenAI-compatible server (vLLM ``serve``, llama.cpp server, Ollama) via the ``openai`` SDK.

Retries (429, 5xx, timeouts, connection errors) are done once, here, with tenacity; the SDK's own retries
are off so attempts are not counted twice. Servers that leave tool calls in the message text (llama.cpp with
``tool_choice="auto"``) are handled by parsing the text.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .._extras import require
from ..budget.prices import ModelPrice
from .base import emit_delta, estimate_tokens
from .messages import (
    Message,
    ModelResponse,
    ModelSettings,
    RequestUsage,
    ToolCall,
    ToolSchema,
    to_openai_messages,
    to_openai_tools,
)
from .retry import with_retries
from .sdk_params import keep_accepted
from .toolparse import make_call, new_call_id, parse_tool_calls

__all__ = ["OpenAIModel"]

_OFFICIAL = "api.openai.com"


def _retryable(exc: BaseException) -> bool:
    openai = require("openai", "openai")
    if isinstance(exc, (openai.RateLimitError, openai.APITimeoutError, openai.APIConnectionError)):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500


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
    ) -> None:
        openai = require("openai", "openai")
        self.name = model
        self.base_url = base_url
        self.price = price
        self.stream = stream
        self.max_attempts = max_attempts
        self.backoff = backoff
        self._official = base_url is None or _OFFICIAL in base_url
        key = api_key or os.environ.get("OPENAI_API_KEY") or ("" if self._official else "sk-no-key-required")
        self.client = client or openai.AsyncOpenAI(
            base_url=base_url, api_key=key or None, max_retries=0, timeout=timeout
        )

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSchema]) -> int:
        return estimate_tokens(messages, tools)

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
        openai = require("openai", "openai")

        async def once() -> ModelResponse:
            if self.stream or settings.get("stream"):
                return await self._stream(params, names, messages, tools)
            return self._convert(await self.client.chat.completions.create(**params), names)

        where = self.base_url or "api.openai.com"
        return await with_retries(
            once,
            retryable=_retryable,
            attempts=self.max_attempts,
            backoff=self.backoff,
            api_error=openai.APIError,
            describe=f"OpenAI-compatible request to {where} ({self.name})",
        )

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
            Message.assistant(text, calls), _usage(completion.usage), completion.model, choice.finish_reason
        )

    async def _stream(
        self,
        params: dict[str, Any],
        names: Sequence[str],
        messages: Sequence[Message],
        tools: Sequence[ToolSchema],
    ) -> ModelResponse:
        params = dict(params, stream=True, stream_options={"include_usage": True})
        text: list[str] = []
        parts: dict[int, dict[str, str]] = {}
        usage, finish, model = None, None, self.name
        async for chunk in await self.client.chat.completions.create(**params):
            model = chunk.model or model
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
                delta = choice.delta
                if delta.content:
                    text.append(delta.content)
                    emit_delta(delta.content)
                for tc in delta.tool_calls or []:
                    slot = parts.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                    slot["id"] = tc.id or slot["id"]
                    if tc.function is not None:
                        slot["name"] += tc.function.name or ""
                        slot["arguments"] += tc.function.arguments or ""
        calls = tuple(_call(p["id"], p["name"], p["arguments"], names) for _, p in sorted(parts.items()))
        content = "".join(text)
        if not calls and names and content:
            parsed = parse_tool_calls(content, names)
            calls, content = parsed.calls, (parsed.text if parsed.calls else content)
        message = Message.assistant(content, calls)
        if usage is None:  # some servers (llama.cpp) ignore stream_options: charge a high estimate instead
            out = estimate_tokens([message], [])
            return ModelResponse(
                message, RequestUsage(estimate_tokens(messages, tools), out, estimated=True), model, finish
            )
        return ModelResponse(message, _usage(usage), model, finish)


def _call(call_id: str | None, name: str, arguments: str | None, names: Sequence[str]) -> ToolCall:
    return make_call(call_id or new_call_id(), name, arguments or "", names)


def _usage(usage: Any) -> RequestUsage:
    if usage is None:
        return RequestUsage()
    details = getattr(usage, "prompt_tokens_details", None)
    cached = int(getattr(details, "cached_tokens", 0) or 0) if details is not None else 0
    return RequestUsage(int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0), cached)
