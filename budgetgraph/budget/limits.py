"""Budget: the frozen caps of a run (None means unlimited) and its string form for the CLI."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from ..errors import ConfigError

__all__ = [
    "Amount",
    "Budget",
    "NAME_GRAMMAR",
    "RESOURCES",
    "RESOURCE_ALIASES",
    "check_name",
    "closest",
    "safe_name",
    "tool_key",
]

Amount = int | float | Decimal
"""A quantity of one resource: int for counts and tokens, Decimal for dollars, float for seconds."""

TOOL_PREFIX = "tool:"
RESOURCES = (
    "tool_calls",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "usd",
    "seconds",
    "llm_calls",
    "turns",
)
"""Ledger keys of the global resources; per-tool caps use ``tool:<name>``."""

_ALIASES = {
    "tools": "tool_calls",
    "total_tool_calls": "tool_calls",
    "tool_calls": "tool_calls",
    "tokens": "total_tokens",
    "total_tokens": "total_tokens",
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "usd": "usd",
    "dollars": "usd",
    "cost": "usd",
    "seconds": "seconds",
    "time": "seconds",
    "llm_calls": "llm_calls",
    "model_calls": "llm_calls",
    "turns": "turns",
}
RESOURCE_ALIASES: Mapping[str, str] = MappingProxyType(_ALIASES)
"""The names a budget string may give a global resource, to its ledger key."""
_FIELD_OF = {"tool_calls": "total_tool_calls"}
NAME_GRAMMAR = "[A-Za-z_][A-Za-z0-9_-]{0,63}"
"""The one grammar of tool names and budget keys: a letter or ``_``, then up to 63 letters, digits, ``_`` or
``-`` (ASCII). Every model API accepts it, and no store encoding or budget string can be forged with it."""
_NAME = re.compile(rf"^{NAME_GRAMMAR}$")
_COUNT = re.compile(r"^[0-9]+$")
_DECIMAL = re.compile(r"^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")


def check_name(name: object, what: str = "tool name") -> str:
    """``name`` if it fits :data:`NAME_GRAMMAR`, else a :class:`ConfigError` that says what to change."""
    if not isinstance(name, str) or not _NAME.match(name):
        hint = f"; {safe_name(name)!r} would do" if isinstance(name, str) and name else ""
        raise ConfigError(
            f"{what} {name!r} is not allowed: use a letter or '_' followed by up to 63 letters, digits, '_' "
            f"or '-' (ASCII){hint}"
        )
    return name


def safe_name(name: str) -> str:
    """``name`` made to fit the grammar: every other character becomes ``_``, cut to 64 characters."""
    out = re.sub(r"[^A-Za-z0-9_-]", "_", name.encode("ascii", "replace").decode())
    if not out or not (out[0].isalpha() or out[0] == "_"):
        out = "_" + out
    return out[:64]


def closest(name: str, names: Iterable[str]) -> str:
    """``' (did you mean 'x'?)'`` for the nearest of ``names``, or ``''`` when none is near."""
    import difflib

    pool = list(names)
    near = difflib.get_close_matches(name, pool, n=1, cutoff=0.5)
    if not near:  # "search" for "web_search", "fetch" for "fetch_page"
        near = [p for p in pool if name.lower() in p.lower() or p.lower() in name.lower()][:1]
    return f" (did you mean {near[0]!r}?)" if near else ""


def _number(part: str, raw: str, key: str | None) -> Any:
    """One budget value: Decimal dollars, float seconds, else a whole number; finite and not negative."""
    if raw.startswith("-") and (_DECIMAL if key in ("usd", "seconds") else _COUNT).match(raw[1:]):
        raise ConfigError(f"budget item {part!r}: a cap cannot be negative")
    if not (_DECIMAL if key in ("usd", "seconds") else _COUNT).match(raw):
        kind = "a finite number" if key in ("usd", "seconds") else "a whole number"
        raise ConfigError(
            f"budget item {part!r}: {raw!r} is not {kind} (ASCII digits only, no sign or spaces, e.g. "
            f"'{part.partition('=')[0].strip()}=5')"
        )
    try:
        if key == "usd":
            value: Any = Decimal(raw)
            if not value.is_finite():
                raise InvalidOperation
        elif key == "seconds":
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError
        else:
            value = int(raw)
    except (ValueError, InvalidOperation):
        kind = "a finite number" if key in ("usd", "seconds") else "a whole number"
        raise ConfigError(f"budget item {part!r}: {raw!r} is not {kind}") from None
    if value < 0:
        raise ConfigError(f"budget item {part!r}: a cap cannot be negative")
    return value


MOST = 2**53 - 1
"""The largest cap or amount taken anywhere (what a budget store keeps exactly; dollars in nano-dollars): a
larger one is a typo, and no cap is written by leaving the cap out."""
_MOST_USD = Decimal(MOST) / 10**9


def exact(key: str, value: object) -> Any:
    """``value`` as the exact amount of ledger key ``key`` (Decimal dollars, float seconds, whole numbers
    otherwise): a number, or a string of ASCII digits; a bool, a fraction of a count, a non-finite, negative
    or absurd number is a :class:`ConfigError` that names the key."""
    name = key.removeprefix(TOOL_PREFIX)
    dollars, seconds = key == "usd", key == "seconds"
    kind = "a number of dollars" if dollars else "a number of seconds" if seconds else "a whole number"
    if isinstance(value, str):
        text = value.strip()
        if not (_DECIMAL if dollars or seconds else _COUNT).match(text):
            raise ConfigError(f"{name} must be {kind} (ASCII digits, no sign), got {value!r}")
        value = Decimal(text) if dollars else float(text) if seconds else int(text)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ConfigError(f"{name} must be {kind}, got {value!r}")
    finite = (
        value.is_finite() if isinstance(value, Decimal) else isinstance(value, int) or math.isfinite(value)
    )
    if not finite or value < 0:
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}; leave it out for no cap")
    if dollars:
        value = Decimal(str(value))
        if value > _MOST_USD:
            raise ConfigError(
                f"{name} = {value} is above what a store keeps exactly ({_MOST_USD}): leave it out for no cap"
            )
        return value
    if value > MOST:
        raise ConfigError(
            f"{name} = {value} is above what a store keeps exactly ({MOST}): leave it out for no cap"
        )
    if seconds:
        return float(value)
    if isinstance(value, float | Decimal) and value != int(value):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def tool_key(name: str) -> str:
    """Ledger key of a tool's own cap."""
    return TOOL_PREFIX + name


def _empty() -> Mapping[str, int]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """Caps for one run. Every field is optional; ``None`` (or a missing tool) means unlimited.

    Tool caps count *units*: one per call, or one per query string / URL for batched tools (as in BATS).
    """

    tool_calls: Mapping[str, int] = field(default_factory=_empty)
    total_tool_calls: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    usd: Decimal | None = None
    seconds: float | None = None
    llm_calls: int | None = None
    turns: int | None = None
    """Acting model turns (the loop's tool-choosing calls; final-answer, verifier and planning calls are not
    turns): the cap of turn control."""

    def __post_init__(self) -> None:
        caps = dict(self.tool_calls)
        for name, cap in caps.items():
            check_name(name, "budget: tool cap")
            if not isinstance(cap, int) or isinstance(cap, bool) or not 0 <= cap <= MOST:
                raise ConfigError(
                    f"budget: tool cap for {name!r} must be a non-negative whole number, got {cap!r}"
                )
        object.__setattr__(self, "tool_calls", MappingProxyType(caps))
        if self.usd is not None and not isinstance(self.usd, Decimal):
            try:
                object.__setattr__(self, "usd", Decimal(str(self.usd)))
            except InvalidOperation:
                raise ConfigError(f"budget usd must be a number of dollars, got {self.usd!r}") from None
        for name in (_FIELD_OF.get(key, key) for key in RESOURCES):  # every global cap, by its field name
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
                raise ConfigError(f"budget {name} must be a number, got {value!r}")
            finite = (
                value.is_finite()
                if isinstance(value, Decimal)
                else isinstance(value, int) or math.isfinite(value)
            )
            if not finite:
                raise ConfigError(
                    f"budget {name} must be a finite number, got {value!r}; leave it out for no cap"
                )
            if value < 0:
                raise ConfigError(f"budget {name} must be >= 0, got {value!r}")
            if name not in ("usd", "seconds") and not isinstance(value, int):
                raise ConfigError(f"budget {name} must be a whole number, got {value!r}")
            if value > (_MOST_USD if name == "usd" else MOST):
                raise ConfigError(
                    f"budget {name} = {value} is above what a store keeps exactly: leave it out for no cap"
                )

    @classmethod
    def uniform(cls, calls: int, tools: Iterable[str], **caps: Any) -> Budget:
        """The same call cap for each named tool (the evaluation sweeps' ``--budget B``)."""
        return cls(tool_calls={name: calls for name in tools}, **caps)

    @classmethod
    def parse(cls, text: str, tools: Iterable[str] = ()) -> Budget:
        """The one budget grammar (Python, ``run``, ``eval``): ``"search=5,open=5,usd=0.02,tokens=20000"``.

        Known names are the global resources (and their aliases); any other name is a tool's cap. A bare
        number ``N`` means N calls of each tool in ``tools`` (``"5"``, or ``"5,usd=0.02"``); ``"none"`` means
        no caps. A name given twice (``usd=0.01,cost=5``) is an error, as are negative, NaN and infinite numbers.
        """
        named = tuple(tools)
        if not text or not text.strip():
            raise ConfigError("empty budget string: give NAME=NUMBER pairs, e.g. 'search=5,open=5,usd=0.02'")
        if text.strip().lower() in ("none", "unlimited"):
            return cls()
        caps_tools: dict[str, int] = {}
        caps: dict[str, Any] = {}
        seen: dict[str, str] = {}
        uniform: int | None = None
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part and _COUNT.match(part):
                if not named:
                    raise ConfigError(
                        f"budget {text!r}: a bare number means that many calls of each capped tool, and "
                        "there are no tools to apply it to here; write NAME=NUMBER pairs, e.g. "
                        "'search=5,open=5' or 'tools=5' (all tool calls together)"
                    )
                if uniform is not None:
                    raise ConfigError(f"budget {text!r}: the bare number is given twice")
                uniform = int(part)
                continue
            name, sep, raw = part.partition("=")
            raw = raw[1:] if raw.startswith("$") else raw
            if not sep or not name or not raw or not _NAME.match(name):
                raise ConfigError(
                    f"cannot parse budget item {part!r} in {text!r}: expected NAME=NUMBER pairs separated by "
                    f"commas, e.g. 'search=5,open=5,usd=0.02' (no spaces around '='). Global names: "
                    f"{', '.join(sorted(_ALIASES))}; any other name is a tool's call cap"
                )
            key = _ALIASES.get(name.lower())
            if key is None and named and name not in named:
                raise ConfigError(
                    f"budget {text!r}: {name!r} names no tool and no global resource"
                    f"{closest(name, [*named, *_ALIASES])}. The tools: {', '.join(named)}; global resources: "
                    f"{', '.join(sorted(_ALIASES))}"
                )
            slot = key or f"tool:{name}"
            if slot in seen:
                raise ConfigError(
                    f"budget {text!r}: {slot.removeprefix('tool:')} is given twice ({seen[slot]!r} and "
                    f"{part!r}); give each cap once"
                )
            seen[slot] = part
            value = _number(part, raw, key)
            if key is None:
                caps_tools[name] = value
            else:
                caps[_FIELD_OF.get(key, key)] = value
        if uniform is not None:
            for name in named:
                caps_tools.setdefault(name, uniform)
        return cls(tool_calls=caps_tools, **caps)

    def limits(self) -> dict[str, Amount]:
        """The caps as ledger keys (only the capped resources)."""
        out: dict[str, Amount] = {tool_key(name): cap for name, cap in self.tool_calls.items()}
        for key in RESOURCES:
            value = getattr(self, _FIELD_OF.get(key, key))
            if value is not None:
                out[key] = value
        return out

    @classmethod
    def from_limits(cls, limits: Mapping[str, Amount]) -> Budget:
        """Inverse of :meth:`limits` (used for child budgets, snapshots and accounts' mappings). A key that is
        neither a resource nor ``tool:NAME`` is an error, never a cap silently dropped."""
        for key in limits:
            if not (isinstance(key, str) and (key in RESOURCES or key.startswith(TOOL_PREFIX))):
                hint = (
                    f" (a tool's cap is 'tool:{key}')" if isinstance(key, str) and key.isidentifier() else ""
                )
                raise ConfigError(
                    f"{key!r} is not a budget key{closest(str(key), RESOURCES)}{hint}; the keys are "
                    f"{', '.join(RESOURCES)} and tool:NAME"
                )
        tools = {k[len(TOOL_PREFIX) :]: exact(k, v) for k, v in limits.items() if k.startswith(TOOL_PREFIX)}
        caps = {_FIELD_OF.get(key, key): exact(key, limits[key]) for key in RESOURCES if key in limits}
        return cls(tool_calls=tools, **caps)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (``usd`` as a string to keep it exact)."""
        return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in self.limits().items()}

    def __str__(self) -> str:
        parts = [f"{name}={cap}" for name, cap in self.tool_calls.items()]
        for key in RESOURCES:
            value = getattr(self, _FIELD_OF.get(key, key))
            if value is not None:
                parts.append(f"{key}={value}")
        return ",".join(parts) or "unlimited"
