"""budgetgraph: budget-aware, tool-using LLM agents on LangGraph with an exact, live ledger."""

from .agents import Agent, RunResult, StopReason
from .budget import (
    Account,
    Budget,
    Ledger,
    ModelPrice,
    PriceTable,
    RedisBudgetStore,
    SQLiteBudgetStore,
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
    PriceError,
    ToolCallError,
    ToolRejected,
)
from .models import Message, ScriptedModel, ToolCall
from .tools import Corpus, Tool, tool

__version__ = "0.1.0"

__all__ = [
    "Account",
    "AccountExceeded",
    "Agent",
    "Budget",
    "BudgetExceeded",
    "BudgetExhausted",
    "BudgetgraphError",
    "ConfigError",
    "Corpus",
    "Ledger",
    "Message",
    "MissingExtra",
    "ModelError",
    "ModelPrice",
    "PriceError",
    "PriceTable",
    "RedisBudgetStore",
    "RunResult",
    "SQLiteBudgetStore",
    "ScriptedModel",
    "StopReason",
    "Tool",
    "ToolCall",
    "ToolCallError",
    "ToolRejected",
    "Usage",
    "__version__",
    "tool",
]
