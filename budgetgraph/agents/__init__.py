"""Agents: graph state, the LangGraph loops built from the metering layer and the planners, the planner
registry, events and the Agent facade."""

from .agent import Agent, RunResult, StopReason
from .events import AgentEvent, BudgetOverrun, BudgetUpdate, FinalAnswer, ModelTurn, ToolResult
from .graph import AgentLoop, LoopConfig, build_graph
from .planners import PLANNERS, PlannerSpec
from .runtime import RunContext
from .state import AgentState

__all__ = [
    "PLANNERS",
    "Agent",
    "AgentEvent",
    "AgentLoop",
    "AgentState",
    "BudgetOverrun",
    "BudgetUpdate",
    "FinalAnswer",
    "LoopConfig",
    "ModelTurn",
    "PlannerSpec",
    "RunContext",
    "RunResult",
    "StopReason",
    "ToolResult",
    "build_graph",
]
