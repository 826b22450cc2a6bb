"""Anthropic's Messages API through the ``anthropic`` SDK: tool use (parallel too), usage with cache reads
and writes priced separately, optional streaming. ``request`` makes one attempt (the metering layer retries;
the SDK's retries are off), and only parameters the installed SDK accepts are sent. Input tokens are bounded
from above before a call (no tokenizer ships for Claude).

``input_tokens`` in budgetgraph counts every prompt token; Anthropic reports uncached, cache-read and
cache-write tokens separately, so they are summed here and passed on as ``cached_input_tokens`` and
``cache_write_tokens`` for :class:`~budgetgraph.budget.prices.ModelPrice` to price apart.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

from .._extras import require
from .._redact import remember_secret
from ..budget.prices import ModelPrice
from ..errors import ConfigError
from .base import Failure, emit_delta, upper_bound_tokens
from .messages import Message, ModelResponse, ModelSettings, RequestUsage, ToolSchema, reported_count
from .sdk_params import keep_accepted
from .toolparse import make_call

__all__ = ["AnthropicModel", "to_anthropic_messages"]

_FINISH = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length", "stop_sequence": "stop"}


def to_anthropic_messages(messages: Sequence[Message]) -> tuple[str, list[dict[str, Any]]]:
    """(system, messages): system text is top-level; tool results become ``tool_result`` blocks of one user turn."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": m.content}
            if (
                out
                and out[-1]["role"] == "user"
                and isinstance(out[-1]["content"], list)
                and all(b.get("type") == "tool_result" for b in out[-1]["content"])
            ):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif m.role == "assistant":
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
            blocks += [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": dict(c.arguments)}
                for c in m.tool_calls
            ]
            out.append({"role": "assistant", "content": blocks or [{"type": "text", "text": ""}]})
        else:
            out.append({"role": "user", "content": m.content})
    return system, out


_EPHEMERAL: dict[str, str] = {"type": "ephemeral"}


def _mark_cache_points(params: dict[str, Any]) -> None:
    """Prompt-cache breakpoints (``cache_control``) on the system prompt and on the last message's last block:
    Anthropic caches the prefix up to each, so the next call of a loop reads what this one wrote."""
    if isinstance(params.get("system"), str):
        params["system"] = [{"type": "text", "text": params["system"], "cache_control": _EPHEMERAL}]
    turns = params.get("messages") or []
    if not turns:
        return
    last = turns[-1]
    content = last["content"]
    blocks: list[dict[str, Any]] = (
        [{"type": "text", "text": content}] if isinstance(content, str) else [dict(b) for b in content]
    )
    if blocks:
        blocks[-1]["cache_control"] = _EPHEMERAL
        turns[-1] = {**last, "content": blocks}


class AnthropicModel:
    """``AnthropicModel("claude-sonnet-4-5")``; the key comes from ``ANTHROPIC_API_KEY`` unless given.

    ``cache_prompt=True`` marks prompt-cache breakpoints, so a loop's calls read their shared prefix from
    Anthropic's cache (billed at the cache-read rate); cache writes cost more than plain input, so its calls
    are reserved at the worst case of the two.
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        price: ModelPrice | None = None,
        timeout: float = 120.0,
        max_attempts: int = 4,
        backoff: float = 0.5,
        stream: bool = False,
        default_max_tokens: int = 1024,
        http_client: Any = None,
        on_text: Callable[[str], None] | None = None,
        cache_prompt: bool = False,
    ) -> None:
        anthropic = require("anthropic", "anthropic")
        self.name = model
        self.writes_cache = cache_prompt
        self.provider = "anthropic"
        self.price = price
        self.stream = stream
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.default_max_tokens = default_max_tokens
        self.on_text = on_text
        key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        remember_secret(key)  # masked wherever it would be echoed (an error body, a trace)
        if not key and http_client is None and base_url is None:
            raise ConfigError(
                f"model 'anthropic:{model}' needs ANTHROPIC_API_KEY (export it, or pass api_key=)"
            )
        self.client = anthropic.AsyncAnthropic(
            api_key=key or "missing-key",
            base_url=base_url,
            max_retries=0,
            timeout=timeout,
            http_client=http_client,
        )

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSchema]) -> int:
        return upper_bound_tokens(messages, tools)

    def failure(self, exc: BaseException) -> Failure:
        """429, 5xx and 529 (overloaded): seen, not billed, retried; a timeout may have been billed."""
        anthropic = require("anthropic", "anthropic")
        if isinstance(exc, anthropic.APITimeoutError):
            return Failure(retryable=True, reached=True, may_bill=True)
        if isinstance(exc, anthropic.APIConnectionError):
            return Failure(retryable=True)
        if isinstance(exc, anthropic.APIStatusError):
            code = exc.status_code
            return Failure(retryable=code == 429 or code >= 500, reached=True)
        return Failure()

    def params(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema], settings: ModelSettings
    ) -> dict[str, Any]:
        system, turns = to_anthropic_messages(messages)
        params: dict[str, Any] = {
            "model": self.name,
            "messages": turns,
            "max_tokens": settings.get("max_tokens", self.default_max_tokens),
        }
        if system:
            params["system"] = system
        choice = settings.get("tool_choice", "auto")
        if tools and choice != "none":
            params["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": dict(t.parameters)}
                for t in tools
            ]
            tool_choice: dict[str, Any] = (
                {"type": "auto"}
                if choice == "auto"
                else {"type": "any"}
                if choice == "required"
                else {"type": "tool", "name": choice}
            )
            if settings.get("parallel_tool_calls") is False:
                tool_choice["disable_parallel_tool_use"] = True
            params["tool_choice"] = tool_choice
        if "temperature" in settings:
            params["temperature"] = settings["temperature"]
        if "top_p" in settings:
            params["top_p"] = settings["top_p"]
        if "stop" in settings:
            params["stop_sequences"] = list(settings["stop"])
        if "timeout" in settings:
            params["timeout"] = settings["timeout"]
        if self.writes_cache:
            _mark_cache_points(params)
        return params

    async def request(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema], settings: ModelSettings
    ) -> ModelResponse:
        params = self.params(messages, tools, settings)
        names = [t.name for t in tools]
        streaming = bool(self.stream or settings.get("stream"))
        method = self.client.messages.stream if streaming else self.client.messages.create
        params = keep_accepted(params, method, backend=f"anthropic ({self.name})")
        if streaming:
            async with self.client.messages.stream(**params) as stream:
                async for text in stream.text_stream:
                    emit_delta(text)
                    if self.on_text:
                        self.on_text(text)
                return _convert(await stream.get_final_message(), names)
        return _convert(await self.client.messages.create(**params), names)


def _convert(message: Any, names: Sequence[str]) -> ModelResponse:
    text, calls = [], []
    for block in message.content:
        if block.type == "text":
            text.append(block.text)
        elif block.type == "tool_use":
            args = block.input if isinstance(block.input, dict) else json.loads(block.input or "{}")
            calls.append(make_call(block.id, block.name, args, names))
    u = message.usage
    faults: list[str] = []
    read = reported_count(
        "cache_read_input_tokens", getattr(u, "cache_read_input_tokens", None), faults, required=False
    )
    write = reported_count(
        "cache_creation_input_tokens", getattr(u, "cache_creation_input_tokens", None), faults, required=False
    )
    usage = RequestUsage(
        input_tokens=reported_count("input_tokens", getattr(u, "input_tokens", None), faults) + read + write,
        output_tokens=reported_count("output_tokens", getattr(u, "output_tokens", None), faults),
        cached_input_tokens=read,
        cache_write_tokens=write,
        fault=", ".join(faults) or None,
    )
    return ModelResponse(
        Message.assistant("".join(text), tuple(calls)),
        usage,
        message.model,
        _FINISH.get(message.stop_reason or "", message.stop_reason or "stop"),
    )
