"""ScriptedModel: a deterministic test double (like pydantic-ai's TestModel / FunctionModel).

It behaves like a real API where that matters to an agent: it reports realistic token usage (about four
characters a token), honours ``max_tokens`` and, when no tools are offered, it cannot call any: a scripted
tool-call reply then becomes a text reply quoting the latest tool results.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..budget.prices import FREE, ModelPrice
from ..errors import ModelError
from .base import emit_delta
from .messages import Message, ModelResponse, ModelSettings, RequestUsage, ToolCall, ToolSchema

__all__ = ["ScriptedModel"]

Script = Callable[[Sequence[Message], Sequence[ToolSchema]], Message]


def _tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4) if text else 0


class ScriptedModel:
    """``ScriptedModel(fn)`` calls ``fn(messages, tools)`` each turn; ``ScriptedModel([reply, ...])`` replays.

    ``context_window`` makes it refuse, like a server, a request whose prompt plus ``max_tokens`` exceeds it.
    """

    counts_own_usage = True
    """Usage is counted in this process with the model's own tokenizer (the meter does not second-guess it)."""

    price: ModelPrice | None = FREE

    def __init__(
        self,
        script: Script | Sequence[Message],
        *,
        name: str = "scripted",
        latency: float = 0.0,
        record: bool = True,
        context_window: int | None = None,
    ) -> None:
        self.name = name
        self.context_window = context_window
        self.latency = latency
        self.record = record
        self._fn: Script | None = None
        self._replies: list[Message] = []
        if callable(script):
            self._fn = script
        else:
            self._replies = list(script)
        self.calls = 0
        self.requests: list[tuple[list[Message], list[ToolSchema], ModelSettings]] = []

    @staticmethod
    def text(content: str) -> Message:
        return Message.assistant(content)

    @staticmethod
    def tool_calls(calls: Iterable[tuple[str, Mapping[str, Any]] | ToolCall]) -> Message:
        out: list[ToolCall] = []
        for _i, call in enumerate(calls):
            if isinstance(call, ToolCall):
                out.append(call)
            else:
                name, args = call
                out.append(ToolCall("", name, dict(args)))
        return Message.assistant("", out)

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSchema]) -> int:
        total = 3
        for m in messages:
            total += 4 + _tokens(m.content)
            total += sum(8 + _tokens(c.name) + _tokens(str(dict(c.arguments))) for c in m.tool_calls)
        total += sum(10 + _tokens(t.name + t.description + str(t.parameters)) for t in tools)
        return total

    def _next(self, messages: Sequence[Message], tools: Sequence[ToolSchema]) -> Message:
        if self._fn is not None:
            return self._fn(messages, tools)
        if self.calls >= len(self._replies):
            raise IndexError(
                f"ScriptedModel ran out of replies after {len(self._replies)}: add replies or pass a function"
            )
        return self._replies[self.calls]

    async def request(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema], settings: ModelSettings
    ) -> ModelResponse:
        if self.record:
            self.requests.append((list(messages), list(tools), dict(settings)))  # type: ignore[arg-type]
        if self.context_window is not None:  # like a real server: a request that cannot fit is an error
            need = self.count_tokens(messages, tools) + settings.get("max_tokens", 0)
            if need > self.context_window:
                raise ModelError(f"{need} tokens requested, the context window is {self.context_window}")
        if self.latency:
            await asyncio.sleep(self.latency)
        reply = self._next(messages, tools)
        self.calls += 1
        offered = {t.name for t in tools} if settings.get("tool_choice") != "none" else set()
        turn = self.calls
        calls = tuple(
            ToolCall(c.id or f"call_{turn}_{i}", c.name, c.arguments, c.error)
            for i, c in enumerate(reply.tool_calls)
        )
        if calls and not offered:
            latest = [_BLOCK.sub("", m.content).strip() for m in messages if m.role == "tool"][-2:]
            reply = Message.assistant(reply.content or "\n".join(latest) or "I could not find the answer.")
            calls = ()
        text = reply.content
        if settings.get("stream"):
            for piece in re.findall(r"\S+\s*", text):
                emit_delta(piece)
        out_tokens = _tokens(text) + sum(8 + _tokens(c.name) + _tokens(str(dict(c.arguments))) for c in calls)
        finish = "tool_calls" if calls else "stop"
        limit = settings.get("max_tokens")
        if limit is not None and out_tokens > limit:
            text, calls, out_tokens, finish = text[: max(limit, 0) * 4], (), max(limit, 0), "length"
        return ModelResponse(
            Message.assistant(text, calls),
            RequestUsage(input_tokens=self.count_tokens(messages, tools), output_tokens=out_tokens),
            self.name,
            finish,
        )

    @classmethod
    def qa_policy(cls, latency: float = 0.0) -> ScriptedModel:
        """A built-in QA policy: search the question, open the best hit, answer with what it opened.

        ``latency`` seconds of sleep per call stand in for a remote model (benchmarks, kill-and-resume tests).
        """
        return cls(_qa_policy, name="scripted", latency=latency, record=False)


_BLOCK = re.compile(r"<budget>.*?</budget>", re.DOTALL)
_HIT = re.compile(r"^\s*\d+\.\s*\[(.+?)\]", re.MULTILINE)


def _qa_policy(messages: Sequence[Message], tools: Sequence[ToolSchema]) -> Message:
    names = {t.name for t in tools}
    question = next((m.content for m in messages if m.role == "user"), "")
    last_tool = next((m for m in reversed(messages) if m.role == "tool"), None)
    opened = [c for m in messages for c in m.tool_calls if c.name == "open"]
    if last_tool is None and "search" in names:
        return ScriptedModel.tool_calls([("search", {"queries": [question]})])
    if last_tool is not None and not opened and "open" in names:
        hit = _HIT.search(last_tool.content)
        if hit:
            return ScriptedModel.tool_calls([("open", {"title": hit.group(1)})])
    if opened:
        return ScriptedModel.text(f"<answer>{opened[-1].arguments.get('title', '')}</answer>")
    hit = _HIT.search(last_tool.content) if last_tool else None
    return ScriptedModel.text(f"<answer>{hit.group(1) if hit else 'unknown'}</answer>")
