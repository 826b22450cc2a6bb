"""Scoring of function calls against BFCL ``possible_answer`` entries (the AST checker's rules, rewritten).

A ground-truth call is ``{function_name: {param: [accepted values]}}``; ``""`` among the accepted values means
the parameter may be omitted. Strings compare after BFCL's standardisation (case, spaces and ``,./-_*^``
ignored); an integer is accepted where a float is expected; nested dicts hold accepted lists per key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["calls_match", "check_call", "value_matches"]

_STRIP = re.compile(r"[ ,./\-_*^]")


def _std(text: str) -> str:
    return _STRIP.sub("", text).lower()


def _same(value: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(expected, bool) and value == expected
    if isinstance(expected, int | float) and isinstance(value, int | float):
        return float(value) == float(expected)
    if isinstance(expected, str) and isinstance(value, str):
        return _std(value) == _std(expected)
    if isinstance(expected, list | tuple) and isinstance(value, list | tuple):
        return len(value) == len(expected) and all(_same(v, e) for v, e in zip(value, expected, strict=True))
    if isinstance(expected, Mapping) and isinstance(value, Mapping):
        return _dict_matches(value, expected)
    return False


def _dict_matches(value: Mapping[str, Any], expected: Mapping[str, Any]) -> bool:
    """``expected`` maps each key to its accepted values (a list), as nested BFCL answers do."""
    for key, accepted in expected.items():
        options = accepted if isinstance(accepted, list) else [accepted]
        if key not in value:
            if "" not in options:
                return False
            continue
        if not value_matches(value[key], options):
            return False
    return all(k in expected for k in value)


def value_matches(value: Any, accepted: Sequence[Any]) -> bool:
    """True when ``value`` equals one of the accepted values under BFCL's comparison rules."""
    return any(_same(value, option) for option in accepted if option != "" or value == "")


def check_call(name: str, arguments: Mapping[str, Any], expected: Mapping[str, Any]) -> str | None:
    """None when the call matches the single-entry ``expected`` dict, else why it does not."""
    (want_name, params), *_ = expected.items()
    if name != want_name:
        return f"function {name!r} called, expected {want_name!r}"
    for key in arguments:
        if key not in params:
            return f"unexpected argument {key!r}"
    for key, accepted in params.items():
        options = accepted if isinstance(accepted, list) else [accepted]
        if key not in arguments:
            if "" not in options:
                return f"missing required argument {key!r}"
            continue
        if not value_matches(arguments[key], options):
            return f"argument {key!r}={arguments[key]!r} not among {options!r}"
    return None


def calls_match(
    calls: Sequence[tuple[str, Mapping[str, Any]]], expected: Sequence[Mapping[str, Any]]
) -> str | None:
    """None when the calls match the expected ones one to one, in any order (parallel categories)."""
    if len(calls) != len(expected):
        return f"{len(calls)} call(s) made, {len(expected)} expected"
    first_error = ""

    def assign(i: int, free: frozenset[int]) -> bool:
        nonlocal first_error
        if i == len(expected):
            return True
        for j in sorted(free):
            why = check_call(calls[j][0], calls[j][1], expected[i])
            if why is None and assign(i + 1, free - {j}):
                return True
            if why and not first_error:
                first_error = why
        return False

    return None if assign(0, frozenset(range(len(calls)))) else (first_error or "calls do not match")
