"""The Budget Tracker as BATS words it (papers.md section 1): a regime per tool, how many units that tool may
use this turn, the depleted tool named, and "Make the best use of the available resources."

``budget.block`` has one regime from the scarcest resource; this is the per-tool form (``budget_block=
"per_tool"``), kept in its own module so a change to one form's texts leaves the other's results current.
"""

from __future__ import annotations

from collections.abc import Mapping

from .allowance import allowed_this_turn
from .block import _fmt, _label, account_lines
from .ledger import Ledger, Regime, regime_of
from .limits import TOOL_PREFIX

__all__ = [
    "BEST_USE",
    "TOOL_POLICY",
    "TOOL_REGIMES",
    "allowed_this_turn",
    "render_tool_block",
    "render_tool_policy",
]

BEST_USE = "Make the best use of the available resources."

# what each tool's regime asks of that tool
TOOL_REGIMES: Mapping[Regime, str] = {
    "HIGH": "HIGH: explore broadly with diverse calls",
    "MEDIUM": "MEDIUM: converge; refine what worked",
    "LOW": "LOW: verify one fact or finish",
    "CRITICAL": "CRITICAL: one minimal call only if essential",
}
TOOL_POLICY = (
    "You work under a hard budget per tool. After every tool result a <budget> block shows, for each tool, "
    "what is used and what remains, its regime and how many units it may use this turn. Judge each tool by "
    "its own budget: HIGH (>= 70% of it left) explore broadly, 3-5 diverse queries or 2-3 documents; MEDIUM "
    "(30-70%) converge, 2-3 refined queries or 1-2 documents; LOW (10-30%) one focused query or document to "
    "verify one fact or finish; CRITICAL (< 10%) one minimal call only if essential. Never call a tool whose "
    "budget is 0; use the others or answer. Before each call, justify it against the remaining budget. Calls "
    "that do not fit are refused. " + BEST_USE
)


def render_tool_block(ledger: Ledger, units: Mapping[str, str] | None = None) -> str:
    """``<budget>``: one line per capped tool with its own regime and allowance, the other capped resources,
    then the paper's closing line. ``units`` names what a tool's budget counts (budget key -> "queries")."""
    units = units or {}
    lines = ["<budget>"]
    for key, limit in ledger.limits.items():
        left = ledger.remaining(key) or 0
        used = ledger.spent(key)
        line = f"{_label(key)}: used {_fmt(key, used)}, remaining {_fmt(key, left)} of {_fmt(key, limit)}"
        if key.startswith(TOOL_PREFIX) or key == "tool_calls":
            name = key.removeprefix(TOOL_PREFIX)
            unit = units.get(name)
            if int(left) <= 0:
                line += " (exhausted: do not call it)"
            else:
                regime = regime_of(float(left) / float(limit) if limit else 1.0)
                n = allowed_this_turn(int(left), int(limit), batch=unit is not None)
                word = unit or "calls"
                if n == 1:  # "1 query", "1 call"
                    word = {"queries": "query", "calls": "call"}.get(word, word.removesuffix("s"))
                line += f" ({TOOL_REGIMES[regime]}; at most {n} {word} this turn)"
        lines.append(line)
    lines.extend(account_lines(ledger))
    lines.append(BEST_USE)
    lines.append("</budget>")
    return "\n".join(lines)


def render_tool_policy() -> str:
    """The per-tool policy for the system prompt."""
    return TOOL_POLICY
