"""The budget block the model sees after every tool result, and the regime policy of the system prompt."""

from __future__ import annotations

from decimal import Decimal

from .ledger import Ledger, Regime
from .limits import TOOL_PREFIX, Amount

__all__ = ["REGIME_POLICY", "render_budget_block", "render_policy"]

REGIME_POLICY: dict[Regime, str] = {
    "HIGH": "HIGH (>= 70% left): explore broadly; send 3-5 diverse queries in one search call, open 2-3 documents.",
    "MEDIUM": "MEDIUM (30-70% left): converge; 2-3 refined queries, open 1-2 documents.",
    "LOW": "LOW (10-30% left): verify one fact with 1 focused query or answer.",
    "CRITICAL": "CRITICAL (< 10% left or a tool at 0): do not call an exhausted tool; answer now.",
}


def _label(key: str) -> str:
    if key.startswith(TOOL_PREFIX):
        return key[len(TOOL_PREFIX) :]
    return {"tool_calls": "all tools", "usd": "dollars"}.get(key, key.replace("_", " "))


def _fmt(key: str, value: Amount) -> str:
    if key == "usd":
        return f"${Decimal(value):.4f}"
    if key == "seconds":
        return f"{float(value):.1f}s"
    return f"{int(value):,}"


def render_budget_block(ledger: Ledger) -> str:
    """``<budget>`` with used and remaining per capped resource, and the current regime."""
    lines = ["<budget>"]
    for key, limit in ledger.limits.items():
        remaining = ledger.remaining(key)
        used = ledger.spent(key)
        lines.append(
            f"{_label(key)}: used {_fmt(key, used)}, remaining {_fmt(key, remaining or 0)} of {_fmt(key, limit)}"
        )
    regime = ledger.regime()
    lines.append(f"regime: {REGIME_POLICY[regime]}")
    lines.append("</budget>")
    return "\n".join(lines)


def render_policy() -> str:
    """The regime policy for the system prompt of budget-aware planners."""
    rows = "\n".join(f"- {text}" for text in REGIME_POLICY.values())
    return (
        "You work under a hard budget. After every tool result a <budget> block shows what is used and what "
        "remains. Before each tool call, justify it against the remaining budget. Calls that do not fit are "
        "refused. Policy by regime (the scarcest resource decides):\n" + rows
    )
