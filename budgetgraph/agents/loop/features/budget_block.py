"""The budget the model sees: a ``<budget>`` block after every tool result, and on the first turn in the system
prompt (so the first call is sized to its share, not a whole small cap), never in the question."""

from __future__ import annotations

from collections.abc import Callable

from ....budget.ledger import Ledger
from ..hooks import Hook, Jump, ToolsDone, Turn

__all__ = ["BudgetBlock"]


class BudgetBlock(Hook):
    """``render`` draws the block (the scarcest regime, or one per tool; None: no block); ``suffix`` follows it
    wherever it is shown, and after every tool result even with no block (the budget-aware stop's request);
    ``first_turn``: the first turn's system prompt shows the block too."""

    def __init__(
        self, render: Callable[[Ledger], str] | None, suffix: str = "", first_turn: bool = True
    ) -> None:
        self.render = render
        self.suffix = suffix
        self.first_turn = first_turn

    def block(self, ledger: Ledger) -> str:
        """The block as the model reads it now ("" with no caps, or no block shown)."""
        return self.render(ledger) if self.render is not None and ledger.limits else ""

    async def before_model(self, turn: Turn) -> Jump | None:
        last = turn.history[-1] if turn.history else None
        if (
            self.first_turn
            and turn.turns == 0
            and last is not None
            and last.role == "user"
            and (block := self.block(turn.run.ledger))
        ):
            turn.add_to_system(block + self.suffix)
        return None

    async def after_tools(self, turn: Turn, done: ToolsDone) -> Jump | None:
        block = self.block(turn.run.ledger)
        done.append(("\n\n" + block if block else "") + self.suffix)
        return None
