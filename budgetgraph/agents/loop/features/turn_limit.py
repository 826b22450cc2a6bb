"""Turn control (papers.md section 7): the reminder of turns left on every turn and, for a dynamic cap, more
turns when the agent asks for them at the cap (a journaled grant)."""

from __future__ import annotations

from ....models.messages import Message
from ...events import BudgetGrant
from ...prompts import extract_answer
from ...result import StopReason
from ...turns import MORE_TURNS, TURN_LIMIT_REACHED, TURN_REMINDER, TurnControl
from ..hooks import Hook, Jump, Turn

__all__ = ["TurnLimit"]


class TurnLimit(Hook):
    def __init__(self, control: TurnControl) -> None:
        self.control = control

    async def before_model(self, turn: Turn) -> Jump | None:
        if turn.run.ledger.available("turns") == 0 and (jump := await self.at_cap(turn)) is not None:
            return jump
        left = turn.run.ledger.remaining("turns")
        if self.control.reminder and left is not None:
            turn.add_to_last(TURN_REMINDER.format(n=int(left)))
        return None

    async def at_cap(self, turn: Turn) -> Jump | None:
        """A dynamic cap asks the agent whether it needs more turns and grants ``step`` if so (None: go on);
        otherwise, or when it does not ask, the run answers."""
        ledger = turn.run.ledger
        limit = int(ledger.limits.get("turns", 0))
        out = StopReason("budget_exhausted", "turns", f"The turn budget ({limit} turns) is exhausted.")
        grant = self.control.extension(limit)
        if grant <= 0:
            return Jump("answer", out)
        nudge = Message.user(TURN_LIMIT_REACHED.format(used=int(ledger.spent("turns"))))
        reply = await turn.ask(
            [Message.system(turn.settings.system_prompt), *turn.history, nudge], role="extend"
        )
        if isinstance(reply, StopReason):
            return Jump("answer", reply)
        turn.keep(nudge)
        turn.keep(reply.message)
        asked = MORE_TURNS.search(reply.message.content)
        if asked is None:
            answer = extract_answer(reply.message.content)
            return Jump.to_end(out, answer) if answer else Jump("answer", out)
        reason = asked.group(1).strip() or "(no reason given)"
        new_limit = ledger.grant("turns", grant, by="turn_control", reason=reason)
        plain = new_limit if isinstance(new_limit, int | float) else str(new_limit)
        turn.emit(BudgetGrant("turns", grant, plain, "turn_control", reason))
        return None
