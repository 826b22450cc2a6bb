"""Human approval of tool calls (``Agent(approve=...)``): the run pauses before the calls that need a decision
are admitted, and goes on with each approved, edited or rejected (see ``agents.approval``)."""

from __future__ import annotations

from collections.abc import Collection

from ...approval import review
from ..hooks import Batch, Hook, Turn

__all__ = ["Approval"]


class Approval(Hook):
    def __init__(self, approve: Collection[str]) -> None:
        self.approve = frozenset(approve)

    async def before_tools(self, turn: Turn, batch: Batch) -> None:
        calls, skip = review(self.approve, batch.calls)  # may pause here, before anything is reserved
        batch.calls[:] = calls
        batch.skip.update(skip)
