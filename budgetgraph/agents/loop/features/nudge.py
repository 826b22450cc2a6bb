"""Budget forcing, the BATS paper's sequential baseline (``react_nudge``): an answer while tool budget remains
is met by "Wait, you still have remaining tool budget ..." and the next turn must call a tool; the run stops
after ``NUDGE_LIMIT`` answers in a row."""

from __future__ import annotations

from typing import Any, ClassVar

from ....models.messages import Message
from ...nudge import NUDGE, NUDGE_LIMIT
from ..hooks import Hook, Jump, Reply, Turn

__all__ = ["Nudge"]


class Nudge(Hook):
    state: ClassVar[dict[str, Any]] = {"idle": int}
    """Consecutive turns without a tool call."""

    async def before_model(self, turn: Turn) -> Jump | None:
        if int(turn.state.get("idle", 0)) > 0:  # the turn after a nudge must call a tool, as the nudge says
            turn.force = True
        return None

    async def after_model(self, turn: Turn, reply: Reply) -> Jump | None:
        if reply.calls:
            turn.set("idle", 0)
            return None
        idle = int(turn.state.get("idle", 0)) + 1
        if reply.answer and idle < NUDGE_LIMIT and turn.run.tools.available():
            turn.keep(Message.user(NUDGE))
            turn.set("idle", idle)
            turn.keep_answer(reply.answer)
            return Jump.to_model()
        return None
