"""Human approval of tool calls: the run pauses (LangGraph ``interrupt()``) before the calls that need approval
are admitted, and resumes with a decision per call: approve, edit (new arguments) or reject (not run, not
charged).

Decisions, given to ``agent.aresume(thread_id, decisions=...)`` (LangGraph: ``Command(resume=...)``): one for
all pending calls (``"approve"`` / ``"reject"``), or a mapping from call id to ``"approve"``, ``"reject"``,
``{"action": "edit", "arguments": {...}}`` or ``{"action": "reject", "reason": "..."}``. A pending call with no
decision, or one that is not understood, is not run and the model is told why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from langgraph.types import interrupt

from ..models.messages import ToolCall

__all__ = ["pending_payload", "review"]


def needs_approval(approve: Collection[str], name: str) -> bool:
    return "*" in approve or name in approve


def pending_payload(calls: Sequence[ToolCall]) -> dict[str, Any]:
    """What the interrupt carries (JSON-able): the calls awaiting a decision."""
    return {"pending": [{"id": c.id, "name": c.name, "arguments": dict(c.arguments)} for c in calls]}


def _decision(raw: Any) -> tuple[str, Mapping[str, Any] | None, str]:
    """(action, edited arguments, reason) of one decision; action "invalid" says what was wrong."""
    if isinstance(raw, str):
        raw = {"action": raw}
    if not isinstance(raw, Mapping):
        return "invalid", None, f"a decision must be a string or a mapping, got {type(raw).__name__}"
    action = raw.get("action")
    if action == "approve":
        return "approve", None, ""
    if action == "reject":
        return "reject", None, str(raw.get("reason") or "")
    if action == "edit":
        arguments = raw.get("arguments")
        if not isinstance(arguments, Mapping):
            return "invalid", None, "an edit needs 'arguments': a mapping of the call's new arguments"
        return "edit", arguments, ""
    return "invalid", None, f"unknown action {action!r}: use approve, edit or reject"


def review(approve: Collection[str], calls: Sequence[ToolCall]) -> tuple[list[ToolCall], dict[str, str]]:
    """Pause for the calls that need approval (nothing happens before: the node re-runs from its start on
    resume), then apply the decisions: the calls to admit (edited ones changed) and texts for those not run."""
    pending = [c for c in calls if c.error is None and needs_approval(approve, c.name)]
    if not pending:
        return list(calls), {}
    answer = interrupt(pending_payload(pending))
    if isinstance(answer, str) or not isinstance(answer, Mapping):
        decisions: Mapping[str, Any] = {c.id: answer for c in pending}
    else:
        decisions = answer
    out: list[ToolCall] = []
    notes: dict[str, str] = {}
    ids = {c.id for c in pending}
    for call in calls:
        if call.id not in ids:
            out.append(call)
            continue
        if call.id not in decisions:
            notes[call.id] = "No decision was given for this call, so it was not run (and not charged)."
            out.append(call)
            continue
        action, arguments, reason = _decision(decisions[call.id])
        if action == "approve":
            out.append(call)
        elif action == "edit" and arguments is not None:
            out.append(dataclasses.replace(call, arguments=dict(arguments)))
        elif action == "reject":
            why = f": {reason}" if reason else ""
            notes[call.id] = f"The user rejected this call{why}. It was not run (and not charged)."
            out.append(call)
        else:
            notes[call.id] = f"The decision for this call was not understood ({reason}), so it was not run."
            out.append(call)
    return out, notes
