"""budgetgraph: budget-aware, tool-using LLM agents on LangGraph with an exact, live ledger."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .agents import (
        PLANNERS,
        Agent,
        AgentEvent,
        AgentOptions,
        ApprovalRequest,
        BATSOptions,
        Bidder,
        BudgetGrant,
        BudgetRequest,
        BudgetUpdate,
        FinalAnswer,
        PlanAndBudgetOptions,
        PlannerContext,
        PlannerSpec,
        RunResult,
        SaleOptions,
        SamplingOptions,
        StopReason,
        SubRunner,
        ThreadPolicy,
        event_to_dict,
        event_to_json,
        register_planner,
        sse_events,
    )
    from .budget import (
        Account,
        Budget,
        Ledger,
        LocalLeases,
        ModelPrice,
        PriceTable,
        RedisBudgetStore,
        RedisLeases,
        SQLiteBudgetStore,
        SQLiteLeases,
        Usage,
    )
    from .errors import (
        AccountExceeded,
        BudgetExceeded,
        BudgetExhausted,
        BudgetgraphError,
        ConfigError,
        MissingExtra,
        ModelError,
        Overrun,
        PriceError,
        ThreadBusy,
        ToolCallError,
        ToolOverrun,
        ToolRejected,
    )
    from .models import ChatModel, Message, ScriptedModel, ToolCall
    from .tools import Corpus, Tool, tool

__version__ = "0.1.0"

# What each public name is imported from, on first use: `import budgetgraph` for a store or a Budget does
# not load LangGraph (a worker process starts in a fraction of the time).
_WHERE = {
    "PLANNERS": ".agents",
    "Agent": ".agents",
    "AgentEvent": ".agents",
    "AgentOptions": ".agents",
    "ApprovalRequest": ".agents",
    "BATSOptions": ".agents",
    "Bidder": ".agents",
    "BudgetGrant": ".agents",
    "BudgetRequest": ".agents",
    "BudgetUpdate": ".agents",
    "FinalAnswer": ".agents",
    "PlanAndBudgetOptions": ".agents",
    "PlannerContext": ".agents",
    "PlannerSpec": ".agents",
    "RunResult": ".agents",
    "SaleOptions": ".agents",
    "SamplingOptions": ".agents",
    "StopReason": ".agents",
    "SubRunner": ".agents",
    "ThreadPolicy": ".agents",
    "event_to_dict": ".agents",
    "event_to_json": ".agents",
    "register_planner": ".agents",
    "sse_events": ".agents",
    "Account": ".budget",
    "Budget": ".budget",
    "Ledger": ".budget",
    "LocalLeases": ".budget",
    "ModelPrice": ".budget",
    "PriceTable": ".budget",
    "RedisBudgetStore": ".budget",
    "RedisLeases": ".budget",
    "SQLiteBudgetStore": ".budget",
    "SQLiteLeases": ".budget",
    "Usage": ".budget",
    "AccountExceeded": ".errors",
    "BudgetExceeded": ".errors",
    "BudgetExhausted": ".errors",
    "BudgetgraphError": ".errors",
    "ConfigError": ".errors",
    "MissingExtra": ".errors",
    "ModelError": ".errors",
    "Overrun": ".errors",
    "PriceError": ".errors",
    "ThreadBusy": ".errors",
    "ToolCallError": ".errors",
    "ToolOverrun": ".errors",
    "ToolRejected": ".errors",
    "ChatModel": ".models",
    "Message": ".models",
    "ScriptedModel": ".models",
    "ToolCall": ".models",
    "Corpus": ".tools",
    "Tool": ".tools",
    "tool": ".tools",
}


__all__ = [
    "Account",
    "AccountExceeded",
    "Agent",
    "AgentEvent",
    "AgentOptions",
    "ApprovalRequest",
    "BATSOptions",
    "Bidder",
    "Budget",
    "BudgetExceeded",
    "BudgetExhausted",
    "BudgetGrant",
    "BudgetRequest",
    "BudgetUpdate",
    "BudgetgraphError",
    "ChatModel",
    "ConfigError",
    "Corpus",
    "FinalAnswer",
    "Ledger",
    "LocalLeases",
    "Message",
    "MissingExtra",
    "ModelError",
    "ModelPrice",
    "Overrun",
    "ToolOverrun",
    "PLANNERS",
    "PlanAndBudgetOptions",
    "PlannerContext",
    "PlannerSpec",
    "PriceError",
    "PriceTable",
    "RedisBudgetStore",
    "RedisLeases",
    "RunResult",
    "SQLiteBudgetStore",
    "SQLiteLeases",
    "SaleOptions",
    "SamplingOptions",
    "ScriptedModel",
    "StopReason",
    "SubRunner",
    "ThreadBusy",
    "ThreadPolicy",
    "Tool",
    "ToolCall",
    "ToolCallError",
    "ToolRejected",
    "Usage",
    "__version__",
    "event_to_dict",
    "event_to_json",
    "register_planner",
    "sse_events",
    "tool",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562), and keep it."""
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'budgetgraph' has no attribute {name!r}")
    value = getattr(importlib.import_module(where, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
