"""Budgets, the exact ledger, budget stores that span runs, prices and unified cost, and the budget block the
model sees."""

from .block import GENERIC_POLICY, REGIME_POLICY, RegimePolicy, render_budget_block, render_policy
from .leases import Holder, LeaseStore, LocalLeases, RedisLeases, SQLiteLeases
from .ledger import Ledger, Regime, Reservation, Usage, regime_of
from .limits import RESOURCES, Amount, Budget, tool_key
from .prices import FREE, ModelPrice, PriceTable, Pricing, builtin_price, max_output_within
from .redis_store import RedisBudgetStore
from .shared import SharedAccount, spending_from
from .sqlite_store import SQLiteBudgetStore
from .store import WINDOWS, Account, AccountUsage, BudgetStore, Grant, Window, window_bucket
from .tool_block import render_tool_block, render_tool_policy

__all__ = [
    "FREE",
    "WINDOWS",
    "Account",
    "SharedAccount",
    "spending_from",
    "AccountUsage",
    "BudgetStore",
    "Grant",
    "Holder",
    "LeaseStore",
    "LocalLeases",
    "RedisLeases",
    "SQLiteLeases",
    "RedisBudgetStore",
    "SQLiteBudgetStore",
    "Window",
    "window_bucket",
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
    "render_tool_block",
    "render_tool_policy",
    "tool_key",
]
