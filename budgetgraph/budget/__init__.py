"""Budgets, the exact ledger, prices and unified cost, and the budget block the model sees."""

from .block import GENERIC_POLICY, REGIME_POLICY, RegimePolicy, render_budget_block, render_policy
from .ledger import Ledger, Regime, Reservation, Usage, regime_of
from .limits import RESOURCES, Amount, Budget, tool_key
from .prices import FREE, ModelPrice, PriceTable, Pricing, builtin_price, max_output_within

__all__ = [
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
    "Pricing",
    "Regime",
    "Reservation",
    "Usage",
    "builtin_price",
    "max_output_within",
    "regime_of",
    "render_budget_block",
    "render_policy",
    "tool_key",
]
