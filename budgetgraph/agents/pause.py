"""Pause at exhaustion (``Agent(on_exhausted="pause")``): where a run would end on a spent budget, it interrupts
(LangGraph ``interrupt()``, checkpointed) with a budget request, and goes on when the app grants more.

The request (JSON-able) names the exhausted resource, every capped resource's used / limit / remaining, and the
agent's last estimate of what it still needs (the budget-aware stop's, where it made one). The app resumes the
thread with a grant, ``{"search": 2, "usd": "0.50"}`` (more of each named cap), or declines (``{}`` or
``"decline"``): a declined request, or one the run's account refuses, ends the run with its best answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from ..budget.ledger import Ledger
from ..budget.limits import RESOURCE_ALIASES, TOOL_PREFIX, Amount, closest, exact
from ..errors import ConfigError

__all__ = ["DECLINE", "budget_request", "grant_keys", "plain", "read_caps", "read_grant", "request_of"]

DECLINE = "decline"
MOST = 10**9
"""The largest count a grant may add (a typo of a few zeros is an error, not a run without a cap)."""


def _name(key: str) -> str:
    return key.removeprefix(TOOL_PREFIX)


def budget_request(ledger: Ledger, stop: Mapping[str, Any], estimates: Sequence[Any] = ()) -> dict[str, Any]:
    """What the interrupt carries: the exhausted resource, why, every capped resource, the last estimate."""
    last = estimates[-1] if estimates else None
    return {
        "budget_request": {
            "resource": _name(str(stop.get("resource") or "")),
            "message": str(stop.get("message") or ""),
            "resources": ledger.status(),
            "estimate": None if last is None else last.get("need"),
            "grantable": [_name(k) for k in ledger.limits],
        }
    }


def request_of(interrupts: Any) -> dict[str, Any] | None:
    """The budget request a paused run waits on (None when its interrupt is not one)."""
    for item in interrupts or ():
        value = getattr(item, "value", None)
        if isinstance(value, dict) and isinstance(value.get("budget_request"), dict):
            return dict(value["budget_request"])
    return None


def grant_keys(ledger: Ledger) -> dict[str, str]:
    """Grantable names (a tool by its name, ``usd``, ``tokens``, ... as a budget string writes them) to the
    ledger's keys."""
    keys = {_name(k): k for k in ledger.limits}
    keys.update({alias: key for alias, key in RESOURCE_ALIASES.items() if key in ledger.limits})
    return keys


def _amount(name: str, key: str, raw: Any) -> Amount:
    """One granted amount: positive, at most :data:`MOST`, in the one number grammar (ASCII digits)."""
    hint = (
        "a positive, finite dollar amount, e.g. '0.50'"
        if key == "usd"
        else f"a positive amount: a whole number from 1 to {MOST:,}"
    )
    try:
        value = exact(key, raw)
    except ConfigError:
        raise ConfigError(f"grant {name}={raw!r}: {hint}") from None
    if value <= 0 or value > MOST:
        raise ConfigError(f"grant {name}={raw!r}: {hint}")
    return value  # type: ignore[no-any-return]


def read_grant(reply: Any, ledger: Ledger) -> dict[str, Amount]:
    """The grant in a resume reply, as ledger keys and exact amounts; {} for a decline. Anything else (an
    unknown or uncapped name, a zero, negative or non-finite amount) is a :class:`ConfigError` that says so."""
    if reply is None or reply == DECLINE:
        return {}
    if isinstance(reply, Mapping) and "grant" in reply and len(reply) == 1:
        reply = reply["grant"]
    if reply is None or reply == DECLINE:
        return {}
    if not isinstance(reply, Mapping):
        raise ConfigError(
            f"a grant is a mapping of capped resources to more of each, e.g. {{'search': 2}}, or 'decline'; "
            f"got {type(reply).__name__}"
        )
    keys = grant_keys(ledger)
    out: dict[str, Amount] = {}
    for name, raw in reply.items():
        key = keys.get(str(name))
        if key is None:
            caps = [_name(k) for k in ledger.limits]
            raise ConfigError(
                f"cannot grant {name!r}: the run does not cap it{closest(str(name), caps)}; its caps: "
                f"{', '.join(caps) or 'none'}"
            )
        out[key] = _amount(str(name), key, raw)
    return out


def plain(grant: Mapping[str, Amount]) -> dict[str, Any]:
    """A grant as the JSON the interrupt's resume carries (dollars as exact strings, tools by name)."""
    return {_name(k): str(v) if isinstance(v, Decimal) else v for k, v in grant.items()}


def read_caps(caps: Any, ledger: Ledger) -> dict[str, Amount]:
    """New caps for a thread's ledger (an operator's change), as ledger keys and exact amounts: the names and
    amounts a grant takes, as absolute values."""
    if not isinstance(caps, Mapping) or not caps:
        raise ConfigError("caps are a mapping of capped resources to their new caps, e.g. {'search': 10}")
    return read_grant(caps, ledger)
