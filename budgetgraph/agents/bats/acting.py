"""BATS's steering of the core's acting step: its own context (the checklist, the summary, what was used, the
live trajectory), a fresh step must search first, a proposed answer goes to the verifier, and every tool turn
marks the checklist's current step."""

from __future__ import annotations

from typing import Any, ClassVar

from ...models.messages import Message
from ...planners.bats import current, mark, render_checklist
from ..loop.hooks import Hook, Jump, Reply, ToolsDone, Turn
from .attempts import Setup, call_text, failed

__all__ = ["BatsHook"]

_STATE_HEADING = "Where you stand:\n\n"  # the run's state after the trajectory (``layout="tail"``)


class BatsHook(Hook):
    state: ClassVar[dict[str, Any]] = {
        "plan": list[dict[str, Any]],
        "proposed": str,
        "used": list[str],
    }
    """The checklist, the answer proposed to the verifier, the tool calls made so far (queries, documents)."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup

    def context(self, turn: Turn, messages: list[Message]) -> list[Message]:
        """The acting call's messages: the prompt and policy, the run's state (clues, checklist, summary,
        findings, what was used), the question and the live trajectory. With ``layout="tail"`` the state
        comes last, so the system message stays the same all run and calls share their prompt prefix."""
        state = turn.state
        fixed = [self.setup.system, *([self.setup.policy] if self.setup.policy else [])]
        parts = self.state_parts(state)
        history = [*turn.history, *turn.kept]
        live = history[state.get("segment", 1) :]
        last_call = max((i for i, m in enumerate(live) if m.role == "assistant" and m.tool_calls), default=-1)
        kept = [
            Message.tool("[older result removed; see the checklist]", m.tool_call_id or "", m.name)
            if m.role == "tool" and i < last_call
            else m
            for i, m in enumerate(live)
            if m.role != "assistant" or m.tool_calls  # plan notes and verdicts are summarised, not replayed
        ]
        if self.setup.options.layout == "tail":
            status = Message.user(_STATE_HEADING + "\n\n".join(parts))
            return [Message.system("\n\n".join(fixed)), history[0], *kept, status]
        return [Message.system("\n\n".join(fixed + parts)), history[0], *kept]

    def state_parts(self, state: Any) -> list[str]:
        words = self.setup.words
        parts = []
        clues = state.get("clues") or {}
        if clues.get("exploration"):
            parts.append(words.explore_label + "; ".join(clues["exploration"]))
        if clues.get("verification"):
            parts.append(words.verify_label + "; ".join(clues["verification"]))
        parts.append(
            "Your checklist ([ ] pending, [x] done, [!] failed, [~] partial):\n"
            + render_checklist(state.get("plan") or [])
        )
        if state.get("summary"):
            parts.append("Summary of earlier attempts: " + state["summary"])
        if state.get("found"):
            parts.append("Findings so far: " + "; ".join(state["found"]))
        if state.get("used"):
            parts.append("Already used (do not repeat): " + "; ".join(state["used"][-20:]))
        return parts

    async def before_model(self, turn: Turn) -> Jump | None:
        start = turn.state.get("step_from", turn.state.get("segment", 1))
        if not any(m.role == "tool" for m in turn.history[start:]):  # a fresh step searches first
            turn.force = True
        return None

    async def after_model(self, turn: Turn, reply: Reply) -> Jump | None:
        if reply.calls:
            used = [call_text(c.name, c.arguments) for c in reply.calls]
            turn.set("used", [*(turn.state.get("used") or []), *used])
            return None
        if not reply.answer:  # e.g. a tool call cut off at max_tokens: no answer to verify
            return None
        turn.set("proposed", reply.answer)
        turn.keep_answer(reply.answer)
        return Jump("verify")

    async def after_tools(self, turn: Turn, done: ToolsDone) -> Jump | None:
        """Mark the checklist's current step done or failed with the units its calls spent."""
        checklist = list(turn.state.get("plan") or [])
        step = current(checklist)
        if step is not None:
            ok = any(not failed(m) for m in done.messages)
            checklist = mark(checklist, step["id"], "done" if ok else "failed", dict(done.spent))
        turn.set("plan", checklist)
        return None
