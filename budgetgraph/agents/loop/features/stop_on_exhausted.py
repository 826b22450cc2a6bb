"""The BATS paper's stop (``AgentOptions.stop_on_exhausted``): the first exhausted tool budget, or a turn whose
every call was refused, ends the acting; by default a run goes on while any capped tool can be called."""

from __future__ import annotations

from ..core import exhausted_cap
from ..hooks import Hook, Jump, ToolsDone, Turn

__all__ = ["StopOnExhausted"]


class StopOnExhausted(Hook):
    async def before_model(self, turn: Turn) -> Jump | None:
        return self._gone(turn)

    async def after_tools(self, turn: Turn, done: ToolsDone) -> Jump | None:
        if (jump := self._gone(turn)) is not None:
            return jump
        if done.all_refused:
            return Jump.to_answer("budget_exhausted", "every tool call was refused", done.refused[0])
        return None

    @staticmethod
    def _gone(turn: Turn) -> Jump | None:
        gone = exhausted_cap(turn.run)
        return Jump.to_answer("budget_exhausted", f"The {gone} budget is exhausted.", gone) if gone else None
