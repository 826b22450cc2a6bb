"""Agents: graph state, the LangGraph loop and the Agent facade."""

from .agent import Agent, RunResult, StopReason
from .events import AgentEvent, BudgetUpdate, FinalAnswer, ModelTurn, ToolResult
from .graph import LEDGER_KEY, LoopConfig, build_graph
from .state import AgentState

__all__ = [
    "LEDGER_KEY",
    "Agent",
    "AgentEvent",
    "AgentState",
    "BudgetUpdate",
    "FinalAnswer",
    "LoopConfig",
    "ModelTurn",
    "RunResult",
    "StopReason",
    "ToolResult",
    "build_graph",
]
