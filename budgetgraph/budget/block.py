"""The budget block the model sees after every tool result, and the regime policy of the system prompt."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from .ledger import Ledger, Regime
from .limits import TOOL_PREFIX, Amount

__all__ = [
    "GENERIC_POLICY",
    "REGIME_POLICY",
    "RegimePolicy",
    "account_lines",
    "render_budget_block",
    "render_policy",
]

RegimePolicy = Mapping[Regime, str]

# BATS's policy for search agents (papers.md section 1)
REGIME_POLICY: RegimePolicy = {
    "HIGH": "HIGH (>= 70% left): explore broadly; send 3-5 diverse queries in one search call, open 2-3 documents.",
    "MEDIUM": "MEDIUM (30-70% left): converge; 2-3 refined queries, open 1-2 documents.",
    "LOW": "LOW (10-30% left): verify one fact with 1 focused query or answer.",
    "CRITICAL": "CRITICAL (< 10% left or a tool at 0): do not call an exhausted tool; answer now.",
}

# the same regimes for agents whose tools are not search and read (planning, function calling)
GENERIC_POLICY: RegimePolicy = {
    "HIGH": "HIGH (>= 70% left): compare options before committing; still prefer the cheapest calls that reach the goal.",
    "MEDIUM": "MEDIUM (30-70% left): commit to the cheapest path that still fits; no exploratory calls.",
    "LOW": "LOW (10-30% left): make only calls that finish the task; check each cost against what remains.",
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


def account_lines(ledger: Ledger) -> list[str]:
    """One line per cap of the run's account (a cap shared with other runs, in its window), if it has one."""
    if ledger.account is None or not ledger.account.limits:
        return []
    usage = ledger.account.usage()
    window = "in all" if usage.window == "total" else f"this {usage.window}"
    return [
        f"account {_label(key)} ({window}, shared with other runs): used "
        f"{_fmt(key, usage.spent.get(key, 0))}, remaining {_fmt(key, usage.remaining(key) or 0)} of "
        f"{_fmt(key, limit)}"
        for key, limit in ledger.account.limits.items()
    ]


def render_budget_block(ledger: Ledger, policy: RegimePolicy = REGIME_POLICY) -> str:
    """``<budget>`` with used and remaining per capped resource (the run's, then its account's: a shared cap
    across runs, in its window), and the current regime."""
    lines = ["<budget>"]
    for key, limit in ledger.limits.items():
        remaining = ledger.remaining(key)
        used = ledger.spent(key)
        lines.append(
            f"{_label(key)}: used {_fmt(key, used)}, remaining {_fmt(key, remaining or 0)} of {_fmt(key, limit)}"
        )
    lines.extend(account_lines(ledger))
    regime = ledger.regime()
    lines.append(f"regime: {policy[regime]}")
    lines.append("</budget>")
    return "\n".join(lines)


def render_policy(policy: RegimePolicy = REGIME_POLICY) -> str:
    """The regime policy for the system prompt of budget-aware planners."""
    rows = "\n".join(f"- {text}" for text in policy.values())
    return (
        "You work under a hard budget. After every tool result a <budget> block shows what is used and what "
        "remains. Before each tool call, justify it against the remaining budget. Calls that do not fit are "
        "refused. Policy by regime (the scarcest resource decides):\n" + rows
    )
