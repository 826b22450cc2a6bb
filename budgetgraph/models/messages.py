"""Provider-neutral chat messages, tool schemas, per-request usage and model responses."""

from __future__ import annotations

import json
import math
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

__all__ = [
    "Message",
    "ModelResponse",
    "ModelSettings",
    "RequestUsage",
    "Role",
    "ToolCall",
    "ToolSchema",
    "ToolStatus",
    "reported_count",
    "to_openai_messages",
    "to_openai_tools",
]

Role = Literal["system", "user", "assistant", "tool"]
ToolStatus = Literal["ok", "empty", "error", "refused"]
"""How a tool call ended: ``ok``; ``empty`` (it ran and found nothing: a search with no hits, a title not in
the corpus); ``error`` (malformed, unknown, raised, timed out, or not run again after a crash); ``refused``
(the budget, or a person, refused it: not run)."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the model asked for. ``error`` is set when the call was malformed (it is then not run)."""

    id: str
    name: str
    arguments: typing.Mapping[str, Any]
    """Spelled ``typing.Mapping``: on Python 3.10 LangGraph's scan of the state's types takes
    ``collections.abc.Mapping[...]`` for a class and fails (``issubclass() arg 1 must be a class``)."""
    error: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.arguments, typing.Mapping):  # checked where a call is made, by any producer
            got = f"{type(self.arguments).__name__} {self.arguments!r:.200}"
            object.__setattr__(self, "arguments", {})
            if self.error is None:
                object.__setattr__(
                    self,
                    "error",
                    f"arguments of {self.name!r} must be a JSON object of named arguments, got {got}",
                )


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message; ``tool_call_id`` links a tool message to the call it answers."""

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    status: ToolStatus | None = field(default=None, compare=False)
    """A tool message's outcome (what planners read, never the text); None for other messages."""

    @classmethod
    def system(cls, content: str) -> Message:
        return cls("system", content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls("user", content)

    @classmethod
    def assistant(cls, content: str = "", tool_calls: Sequence[ToolCall] = ()) -> Message:
        return cls("assistant", content, tuple(tool_calls))

    @classmethod
    def tool(
        cls, content: str, tool_call_id: str, name: str | None = None, status: ToolStatus | None = None
    ) -> Message:
        return cls("tool", content, tool_call_id=tool_call_id, name=name, status=status)


@dataclass(frozen=True, slots=True)
class ToolSchema:
    """What a model is told about a tool: name, description and a JSON schema of its arguments."""

    name: str
    description: str
    parameters: typing.Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RequestUsage:
    """Tokens of one model request. ``input_tokens`` includes cached and cache-write tokens."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    estimated: bool = False
    """True when the server reported no usage and the numbers are budgetgraph's high estimate."""
    fault: str | None = None
    """What was wrong with the server's usage report (a negative, NaN, missing or absurd count), when it was:
    the metering layer then charges the call its reservation and stops the run."""


MAX_REPORTED = 10**9
"""The largest token count a usage report may hold for one request; anything above is a lie or a fault."""


def reported_count(name: str, value: Any, faults: list[str], *, required: bool = True) -> int:
    """One count of a server's usage report, checked where it enters: a whole number from 0 to
    :data:`MAX_REPORTED`. Anything else (negative, NaN, a string, missing when ``required``) is appended to
    ``faults`` and read as 0, for the metering layer to charge at the bound."""
    if value is None:
        if required:
            faults.append(f"{name} missing")
        return 0
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and value == int(value)
        and 0 <= value <= MAX_REPORTED
    )
    if not ok:
        faults.append(f"{name}={value!r}")
        return 0
    return int(value)


@dataclass(frozen=True, slots=True)
class ModelResponse:
    """The assistant message plus what it cost."""

    message: Message
    usage: RequestUsage = field(default_factory=RequestUsage)
    model_name: str = ""
    finish_reason: str | None = None
    entropy: float | None = None
    """With ``ModelSettings(entropy=True)``: the reply's mean per-token entropy in nats, where the backend can
    tell (embedded: the full next-token distribution; OpenAI-compatible: its top-20 logprobs, renormalised)."""


class ModelSettings(TypedDict, total=False):
    """Per-request settings every backend understands."""

    max_tokens: int
    temperature: float
    top_p: float
    seed: int
    stop: list[str]
    tool_choice: Literal["auto", "none", "required"] | str
    parallel_tool_calls: bool
    """False: at most one tool call per reply (OpenAI's ``parallel_tool_calls``, Anthropic's
    ``disable_parallel_tool_use``, one call in the local grammar); the agent loop enforces it for every backend."""
    timeout: float
    stream: bool
    """Stream the reply (text deltas go to :func:`budgetgraph.models.base.emit_delta`)."""
    entropy: bool
    """Report the reply's mean per-token entropy (``ModelResponse.entropy``; SALE's bid value)."""
    json_schema: dict[str, Any]
    """A reply without tool calls is one JSON object of this schema: enforced by the embedded model's grammar
    (inside ``<answer>`` tags) and OpenAI-compatible ``response_format``; other backends see it in the prompt
    only (structured output validates the reply either way)."""


def to_openai_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The OpenAI chat-completions wire form (also what llama.cpp chat templates take)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        item: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            item["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": json.dumps(dict(c.arguments))},
                }
                for c in m.tool_calls
            ]
        if m.tool_call_id is not None:
            item["tool_call_id"] = m.tool_call_id
            if m.name:
                item["name"] = m.name
        out.append(item)
    return out


def to_openai_tools(tools: Sequence[ToolSchema]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": dict(t.parameters)},
        }
        for t in tools
    ]
