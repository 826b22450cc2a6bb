"""Parse tool calls that a model wrote as text (Hermes/Qwen ``<tool_call>`` tags or bare JSON).

Servers that do not parse calls themselves (llama.cpp with ``tool_choice="auto"``) and the embedded model
return calls in the message text; this turns them into :class:`ToolCall` objects.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from .messages import ToolCall

__all__ = ["ParsedText", "make_call", "new_call_id", "parse_tool_calls"]

_TAG = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FENCE = re.compile(r"```(?:json|tool_call|tool_code)?\s*(.*?)```", re.DOTALL)
_EMPTY_FENCE = re.compile(r"```(?:json|tool_call|tool_code)?\s*```")
_decoder = json.JSONDecoder()


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:12]


@dataclass(frozen=True, slots=True)
class ParsedText:
    """Result of parsing: the calls found, the text left over, and whether a call was attempted but broken."""

    calls: tuple[ToolCall, ...]
    text: str
    attempted: bool
    error: str | None = None


def make_call(call_id: str, name: str, args: Any, tool_names: Collection[str]) -> ToolCall:
    """A ToolCall from raw arguments (a JSON string or an object), with ``error`` set when it is malformed."""
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            return ToolCall(
                call_id, name, {}, error=f"arguments of {name!r} are not valid JSON: {args[:200]}"
            )
    if not isinstance(args, dict):
        return ToolCall(
            call_id, name, {}, error=f"arguments of {name!r} must be a JSON object, got {args!r:.200}"
        )
    if tool_names and name not in tool_names:
        return ToolCall(call_id, name, args, error=f"unknown tool {name!r}; available: {sorted(tool_names)}")
    return ToolCall(call_id, name, args)


def _as_call(obj: Any, tool_names: Collection[str]) -> ToolCall | None:
    if not isinstance(obj, dict):
        return None
    if "function" in obj and isinstance(obj["function"], dict):  # OpenAI wire shape written as text
        obj = obj["function"]
    name = obj.get("name") or obj.get("tool") or obj.get("tool_name")
    if not isinstance(name, str):
        return None
    args: Any = obj.get("arguments", obj.get("parameters", obj.get("args", {})))
    return make_call(new_call_id(), name, args, tool_names)


def _looks_like_call(obj: Any, tool_names: Collection[str]) -> bool:
    """Untagged JSON is a call only if it names an offered tool or carries arguments."""
    if not isinstance(obj, dict):
        return False
    inner = obj["function"] if isinstance(obj.get("function"), dict) else obj
    name = inner.get("name") or inner.get("tool") or inner.get("tool_name")
    return name in tool_names or any(k in inner for k in ("arguments", "parameters", "args"))


def _json_values(text: str) -> list[tuple[int, int, Any]]:
    """Every top-level JSON object or array in ``text`` as (start, end, value)."""
    found: list[tuple[int, int, Any]] = []
    i = 0
    while i < len(text):
        if text[i] in "{[":
            try:
                value, end = _decoder.raw_decode(text, i)
            except json.JSONDecodeError:
                i += 1
                continue
            found.append((i, end, value))
            i = end
        else:
            i += 1
    return found


def _unique(calls: list[ToolCall]) -> tuple[ToolCall, ...]:
    """Drop exact repeats (same tool, same arguments): small models loop on one call within a reply."""
    seen: set[str] = set()
    out = []
    for c in calls:
        key = c.name + json.dumps(c.arguments, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return tuple(out)


def parse_tool_calls(text: str, tool_names: Collection[str] = ()) -> ParsedText:
    """Find tool calls in ``text``. ``attempted`` is True when the text tries a call that does not parse."""
    calls: list[ToolCall] = []
    tagged = _TAG.findall(text)
    if tagged:
        rest = _TAG.sub("", text).strip()
        for body in tagged:
            values = _json_values(body)
            items = [v for _, _, v in values]
            flat = [x for v in items for x in (v if isinstance(v, list) else [v])]
            parsed = [c for c in (_as_call(x, tool_names) for x in flat) if c is not None]
            if not parsed:
                return ParsedText(tuple(calls), text, True, f"cannot parse the tool call {body[:200]!r}")
            calls.extend(parsed)
        return ParsedText(_unique(calls), rest, False)
    candidates = _FENCE.findall(text) or [text]
    rest = text
    for chunk in candidates:
        for start, end, value in _json_values(chunk):
            flat = value if isinstance(value, list) else [value]
            if not all(_looks_like_call(x, tool_names) for x in flat):
                continue  # JSON data (a structured answer, {"name": "Paris", ...}), not a call
            parsed = [c for c in (_as_call(x, tool_names) for x in flat) if c is not None]
            if parsed and len(parsed) == len(flat):
                calls.extend(parsed)
                rest = rest.replace(chunk[start:end], "", 1)
    if calls:
        return ParsedText(_unique(calls), _EMPTY_FENCE.sub("", rest).strip(), False)
    stripped = text.strip()
    attempted = stripped.startswith(("{", "[{", "```json", "<tool_call")) or (
        '"name"' in stripped and ('"arguments"' in stripped or '"parameters"' in stripped)
    )
    return ParsedText(
        (), text, attempted, "the reply looks like a tool call but is not valid JSON" if attempted else None
    )
