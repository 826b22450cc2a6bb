"""What BATS's hook and steps share: the run's setup, its state keys, and how attempts and look-ups are read."""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from ...budget.ledger import Ledger
from ...meter.tool_calls import REFUSALS
from ...models.messages import Message
from ...planners.bats import BATSOptions, PlanOut, Selection, Verdict, schema_tool
from ...planners.bats_wording import Wording

__all__ = [
    "BATS_STATE",
    "PLAN_TOOL",
    "SELECT_TOOL",
    "VERDICT_TOOL",
    "Setup",
    "budget_text",
    "call_text",
    "details",
    "evidence_only",
    "failed",
    "is_answer",
]

PLAN_TOOL = schema_tool("submit_plan", PlanOut, "Submit the plan.")
VERDICT_TOOL = schema_tool("submit_verdict", Verdict, "Submit the verification verdict.")
SELECT_TOOL = schema_tool("select_answer", Selection, "Select the best attempt by its number.")
_ECHOED = ("Error:", "No document titled", "(no results)", *REFUSALS)
"""How our tools' failures read: a model that copies one into its answer has no answer."""
_NONE = {"", "none", "unknown", "n/a", "i don't know"}

BATS_STATE: dict[str, Any] = {
    "constraints": list[str],
    "attempts": list[dict[str, Any]],
    "summary": str,
    "segment": int,
    "verdict": dict[str, Any],
    "attempt_from": int,
    "attempt_seg": int,
    "step_from": int,
    "summarised_at": int,
    "found": list[str],
    "clues": dict[str, list[str]],
    "consistency": dict[str, Any],
}
"""The keys BATS's own steps keep (the checklist, the attempts, the summary, where the live context starts);
its hook owns ``plan``, ``proposed`` and ``used``."""


@dataclass(frozen=True, slots=True)
class Setup:
    """One BATS planner: its options, prompt texts, answer grouping, the acting system prompt and the sizes
    of its reserve (a verifier call of ``verify_tokens`` and a selection call)."""

    options: BATSOptions
    words: Wording
    key: Callable[[str], Hashable] | None
    system: str
    policy: str
    verify_tokens: int
    answer_tokens: int

    @property
    def max_attempts(self) -> int:
        return self.options.attempts_cap


def failed(message: Message) -> bool:
    """A failed look-up: a tool call that erred or was refused, or one that found nothing (its status)."""
    return message.status in ("error", "refused", "empty")


def call_text(name: str, arguments: Any) -> str:
    args = json.dumps(arguments, ensure_ascii=False, default=str)
    return f"{name}({args[:160]})"


def is_answer(text: str) -> bool:
    """Not an empty or "none" answer, and not a tool error the model echoed back as its answer."""
    clean = text.strip()
    return clean.lower() not in _NONE and not clean.startswith((*_ECHOED, "No information found"))


def evidence_only(messages: list[Message]) -> list[Message]:
    """The question, the tool calls and their results, each failed look-up cut to one line: the final-answer
    context when no attempt was an answer. Plans, verifier notes and echoed errors are left out, as a 1.5B
    model copied them into its final answer."""
    kept = messages[:1]
    for m in messages[1:]:
        if m.tool_calls:
            kept.append(m)
        elif m.role == "tool":
            kept.append(
                Message.tool("(this look-up failed)", m.tool_call_id or "", m.name) if failed(m) else m
            )
    return kept


def details(
    attempts: list[dict[str, Any]], chosen: int | None, how: str, settled: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The run's details: each attempt's answer and verdicts (the verifier's own and after the guards), and
    which was chosen how (an evaluation counts SUCCESS / CONTINUE / PIVOT and SUCCESS precision from these);
    with consistency selection, the stopping rule's last verdict too."""
    out: dict[str, Any] = {
        "attempts": [
            {"answer": a["answer"], "decision": a["decision"], "verifier": a.get("verifier", a["decision"])}
            for a in attempts
        ],
        "chosen": chosen,
        "selected_by": how,
    }
    if settled is not None:
        out["consistency"] = settled
    return out


def budget_text(ledger: Ledger) -> str:
    """What is left of each cap, as the planner and the verifier read it."""
    parts = [
        f"{key.removeprefix('tool:')} {ledger.remaining(key)} of {ledger.limits[key]} left"
        for key in ledger.limits
    ]
    return ", ".join(parts) or "unlimited"
