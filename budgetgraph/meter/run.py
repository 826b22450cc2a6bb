"""One run's metering: its ledger, metered model and tool calls, and the tool calls admitted but not settled."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from ..budget.ledger import Ledger
from ..budget.prices import PriceTable
from ..models.base import ChatModel
from ..tools.base import Tool
from .model_calls import ModelMeter
from .tool_calls import Admitted, ToolMeter

__all__ = ["MeteredRun"]


class MeteredRun:
    """The metering of one run. ``pending`` holds the admitted tool calls until they run; after a crash a
    resumed run has none, which is how an in-flight call is known (and counted as spent, not run again)."""

    def __init__(
        self, ledger: Ledger, model: ChatModel, tools: Mapping[str, Tool], prices: PriceTable | None = None
    ) -> None:
        self.id = uuid.uuid4().hex
        self.ledger = ledger
        self.models = ModelMeter(model, ledger, prices)
        self.tools = ToolMeter(tools, ledger, prices)
        self.pending: dict[str, Admitted] = {}

    def for_model(self, model: ChatModel) -> ModelMeter:
        """Metered calls to another model on the same ledger (a sub-agent's or a judge's)."""
        return ModelMeter(model, self.ledger, self.models.prices)
