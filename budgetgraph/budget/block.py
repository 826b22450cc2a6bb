"""The budget block the model sees after every tool result, and the regime policy of the system prompt."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from .allowance import allowed_this_turn
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

# BATS's policy for search agents (papers.md section 1), with the per-call numbers left to each tool's line
# of the block (its regime's share of what it has left), so a small cap is not spent in one call; the first
# search holds the question's own terms (a small model told "diverse queries" before any result searches
# anything)
REGIME_POLICY: RegimePolicy = {
    "HIGH": "HIGH (>= 70% left): search the question's own key terms first; once results come, widen with other "
    "terms and open the most promising documents.",
    "MEDIUM": "MEDIUM (30-70% left): converge: refine what worked; open the 1-2 documents most likely to hold the answer.",
    "LOW": "LOW (10-30% left): verify one fact with one focused call, or answer.",
    "CRITICAL": "CRITICAL (< 10% left of every tool you can still call, or of a global cap): answer now.",
}

# the same regimes for agents whose tools are not search and read (planning, function calling)
GENERIC_POLICY: RegimePolicy = {
    "HIGH": "HIGH (>= 70% left): compare options before committing; still prefer the cheapest calls that reach the goal.",
    "MEDIUM": "MEDIUM (30-70% left): commit to the cheapest path that still fits; no exploratory calls.",
    "LOW": "LOW (10-30% left): make only calls that finish the task; check each cost against what remains.",
    "CRITICAL": "CRITICAL (< 10% left of every tool you can still call, or of a global cap): finish now.",
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
        for key, limit in usage.limits.items()
    ]


def render_budget_block(
    ledger: Ledger, policy: RegimePolicy = REGIME_POLICY, units: Mapping[str, str] | None = None
) -> str:
    """``<budget>`` with used and remaining per capped resource (the run's, then its account's: a shared cap
    across runs, in its window), how much of each tool to use this turn, and the run's regime. ``units``
    names what a batch tool's budget counts (budget key -> "queries")."""
    units = units or {}
    lines = ["<budget>"]
    for key, limit in ledger.limits.items():
        remaining = ledger.remaining(key)
        used = ledger.spent(key)
        line = f"{_label(key)}: used {_fmt(key, used)}, remaining {_fmt(key, remaining or 0)} of {_fmt(key, limit)}"
        if key.startswith(TOOL_PREFIX):
            left = int(remaining or 0)
            if left <= 0:
                line += " (exhausted: do not call it; the other tools stay usable)"
            else:
                unit = units.get(key.removeprefix(TOOL_PREFIX))
                n = allowed_this_turn(left, int(limit), batch=unit is not None)
                word = unit or "calls"
                if n == 1:
                    word = {"queries": "query", "calls": "call"}.get(word, word.removesuffix("s"))
                line += f" (at most {n} {word} this turn)"
        lines.append(line)
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
        "remains, and how much of each tool to use this turn. Before each tool call, justify it against the "
        "remaining budget. Calls that do not fit are refused. A tool at 0 is out; the others stay usable. "
        "Policy by regime (the scarcest resource you can still use decides):\n" + rows
    )
