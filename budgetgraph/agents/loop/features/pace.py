"""Pacing a small cap (``AgentOptions.pace``): each capped tool is held to the shown block's "at most N this
turn": a batch beyond it runs its first items, a further call waits a turn."""

from __future__ import annotations

from ....budget.allowance import turn_allowance
from ..hooks import Batch, Hook, Turn

__all__ = ["Pace"]


class Pace(Hook):
    async def before_tools(self, turn: Turn, batch: Batch) -> None:
        tools = {n: (t.budget_key, isinstance(t.units, str)) for n, t in turn.run.tools.tools.items()}
        batch.most.update(turn_allowance(turn.run.ledger, tools))
