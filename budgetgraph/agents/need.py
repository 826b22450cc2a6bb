"""The budget-aware stop: with each budget block the agent estimates what it still needs (BAGEN's early stop).

The model writes ``<need>search=1, open=2</need>`` (more calls of each tool before it can answer),
``<need>none</need>`` (it can answer now) or ``<need>infeasible</need>`` (the task cannot be done within what
remains). A need that does not fit what a tool has left, or ``infeasible``, ends the run early with the
agent's best answer so far (stop kind ``stopped_early``). Every estimate is recorded with what was used and
left at the time: estimate against what was used after it is the calibration the report shows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..budget.ledger import Ledger
from ..budget.limits import TOOL_PREFIX

__all__ = [
    "NEED_ASK",
    "NEED_LINE",
    "Estimate",
    "asks_for_more",
    "judge_need",
    "need_example",
    "parse_need",
    "strip_need",
]

NEED_ASK = (
    "With each step, first estimate what you still need, then go on in the same reply (a tool call or your "
    "answer): write <need>{example}</need>, putting in place of each N how many more calls of that tool you "
    "expect to make before you can answer (count the facts you still miss: each one takes a search and often "
    "an open); <need>none</need> when you can answer now; <need>infeasible</need> when the question cannot be "
    "answered within what remains. A need larger than what is left ends the search, and you answer with what "
    "you have."
)
NEED_LINE = (
    "Before going on, estimate what you still need: <need>{example}</need> with your own counts in place of "
    "each N, <need>none</need> or <need>infeasible</need>."
)


def need_example(tools: Sequence[str]) -> str:
    """``search=N, open=N``: the estimate's form with the run's own tool names, and no number to copy."""
    return ", ".join(f"{t}=N" for t in list(tools)[:3]) or "search=N"


_NEED = re.compile(r"<need>\s*(.*?)\s*</need>", re.DOTALL | re.IGNORECASE)
_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_-]{0,63})\s*[=:]\s*(\d{1,4})")

Estimate = dict[str, int] | str
"""A tool -> more calls mapping, or ``"none"`` / ``"infeasible"``."""


def parse_need(text: str, tools: Sequence[str]) -> Estimate | None:
    """The last ``<need>`` of a reply: calls per known tool, ``"none"`` or ``"infeasible"``; None if absent or
    unreadable (a name that is no tool is ignored, never trusted)."""
    found = _NEED.findall(text or "")
    if not found:
        return None
    body = found[-1].strip().lower()
    if body.startswith("infeasible") or "cannot" in body:
        return "infeasible"
    known = {t.lower(): t for t in tools}
    need = {known[name.lower()]: int(n) for name, n in _PAIR.findall(body) if name.lower() in known}
    if need:
        return need
    if body in ("", "0", "nothing") or "none" in body:
        return "none"
    return None


_ANY_NEED = re.compile(r"<need>.*?(?:</need>|$)", re.DOTALL | re.IGNORECASE)


def strip_need(text: str) -> str:
    """The reply without its estimates, an unclosed one included (what the answer and the user see)."""
    return _ANY_NEED.sub("", text or "").strip()


def judge_need(
    estimate: Estimate, ledger: Ledger, tools: Mapping[str, str], turn: int
) -> tuple[dict[str, Any], str | None]:
    """The record of one estimate, and why the run should stop (None: go on). ``tools`` maps each tool's
    name to its budget key; only capped tools can fail to fit."""
    remaining: dict[str, int] = {}
    used: dict[str, int] = {}
    for name, key in tools.items():
        left = ledger.tool_remaining(key)
        if left is not None:
            remaining[name] = int(left)
        used[name] = int(ledger.spent(TOOL_PREFIX + key))
    record = {"turn": turn, "need": estimate, "remaining": remaining, "used": used}
    if estimate == "infeasible":
        return record, "the agent judged the task infeasible within what remains"
    if isinstance(estimate, dict):
        short = {t: n for t, n in estimate.items() if t in remaining and n > remaining[t]}
        if short:
            said = ", ".join(f"{t}={n}" for t, n in short.items())
            have = ", ".join(f"{t}={remaining[t]}" for t in short)
            return record, f"the agent's estimate ({said}) does not fit what remains ({have})"
    return record, None


def asks_for_more(estimate: Estimate) -> bool:
    """Whether an estimate counts at least one more call (a reply that is only such an estimate goes on)."""
    return isinstance(estimate, dict) and any(n > 0 for n in estimate.values())
