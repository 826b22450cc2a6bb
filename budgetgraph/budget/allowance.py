"""How many units a tool may use this turn: its regime's share of what it has left, so a small cap is never
spent in one call while the regime says to explore."""

from __future__ import annotations

import math
from collections.abc import Mapping

from .ledger import Ledger, Regime, regime_of
from .limits import TOOL_PREFIX

__all__ = ["allowed_this_turn", "turn_allowance"]

_SHARE: Mapping[Regime, tuple[float, int, int]] = {
    # share of the remaining units, the most for a batch tool (queries), the most for other tools
    "HIGH": (0.4, 5, 3),
    "MEDIUM": (0.3, 3, 2),
    "LOW": (0.0, 1, 1),
    "CRITICAL": (0.0, 1, 1),
}


def allowed_this_turn(remaining: int, limit: int, batch: bool) -> int:
    """Units a tool may use this turn: its regime's share of what remains, at most the paper's per-call
    numbers and at least one while any remain (so a budget of 5 is not spent in one call)."""
    if remaining <= 0:
        return 0
    regime = regime_of(remaining / limit if limit else 1.0)
    share, most_batch, most = _SHARE[regime]
    return max(1, min(remaining, most_batch if batch else most, math.ceil(remaining * share)))


def turn_allowance(ledger: Ledger, tools: Mapping[str, tuple[str, bool]]) -> dict[str, int]:
    """What each capped tool may use this turn, as the budget block says it (tool name -> units); ``tools``
    maps a tool's name to its budget key and whether it batches. Tools without a cap of their own are absent."""
    out: dict[str, int] = {}
    for name, (key, batch) in tools.items():
        limit = ledger.limits.get(TOOL_PREFIX + key)
        if limit is None:
            continue
        out[name] = allowed_this_turn(int(ledger.remaining(TOOL_PREFIX + key) or 0), int(limit), batch)
    return out
