"""Budgets, the exact ledger, prices and unified cost, and the budget block the model sees."""

from .block import GENERIC_POLICY, REGIME_POLICY, RegimePolicy, render_budget_block, render_policy
from .ledger import Ledger, Regime, Reservation, Usage, regime_of
from .limits import RESOURCES, Amount, Budget, tool_key
from .prices import BUILTIN_MODEL_PRICES, FREE, ModelPrice, PriceTable

__all__ = [
    "BUILTIN_MODEL_PRICES",
    "FREE",
    "GENERIC_POLICY",
    "REGIME_POLICY",
    "RegimePolicy",
    "RESOURCES",
    "Amount",
    "Budget",
    "Ledger",
    "ModelPrice",
    "PriceTable",
    "Regime",
    "Reservation",
    "Usage",
    "regime_of",
    "render_budget_block",
    "render_policy",
    "tool_key",
]
