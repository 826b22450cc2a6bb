"""What the core of the loop needs and that does not change during a run: no budget behaviour is here (those are
hooks)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...budget.ledger import Ledger
from ...budget.limits import Budget
from ...budget.prices import PriceTable
from ...meter import MeteredRun
from ...models.base import ChatModel
from ...models.messages import ModelSettings
from ...tools.base import Tool
from ..prompts import answer_now

__all__ = ["LoopSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopSettings:
    """The core's settings. ``budget`` is the graph's own, for a run not given a ledger (``graph.invoke``
    directly, or as a subgraph); ``hold_calls`` and ``hold_output`` size the final-answer reserve (one answer
    call of ``answer_max_tokens`` by default; BATS holds a verifier and a selection call); ``durable`` admits
    tool calls in a node of their own, so the checkpoint holds them before they run (at most once)."""

    model: ChatModel
    tools: Mapping[str, Tool]
    system_prompt: str
    budget: Budget = field(default_factory=Budget)
    prices: PriceTable = field(default_factory=PriceTable)
    settings: ModelSettings = field(default_factory=lambda: ModelSettings())
    max_tokens: int = 512
    answer_max_tokens: int = 256
    answer_input_reserve: int = 256
    max_turns: int = 30
    durable: bool = False
    answer_nudge: str = field(default_factory=answer_now)
    """The final-answer request (``{reason}`` is filled in)."""
    answer_schema: dict[str, Any] | None = None
    """With structured output: the JSON schema the final-answer call is constrained to (where a backend can)."""
    hold_calls: int = 1
    hold_output: int | None = None

    def new_run(self, ledger: Ledger | None = None) -> MeteredRun:
        """The metering of a run on ``ledger`` (a new one of the graph's budget when None)."""
        return MeteredRun(
            ledger if ledger is not None else Ledger(self.budget), self.model, self.tools, self.prices
        )
