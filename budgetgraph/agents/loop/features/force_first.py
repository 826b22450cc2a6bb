"""The first turn calls a tool (``AgentOptions.force_first_tool``): a small model otherwise answers from memory."""

from __future__ import annotations

from ..hooks import Hook, Jump, Turn

__all__ = ["ForceFirstTool"]


class ForceFirstTool(Hook):
    async def before_model(self, turn: Turn) -> Jump | None:
        if turn.turns == 0:
            turn.force = True
        return None
