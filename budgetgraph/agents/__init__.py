"""Agents: graph state, the LangGraph loops built from the metering layer and the planners, the planner
registry, events and the Agent facade."""

from .agent import Agent, RunResult, StopReason
from .events import (
    AgentEvent,
    BudgetOverrun,
    BudgetUpdate,
    FinalAnswer,
    ModelTurn,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    ToolResult,
    VerifierDecision,
)
from .graph import AgentLoop, LoopConfig, build_graph
from .planners import PLANNERS, PlannerSpec
from .runtime import RunContext
from .sse import event_to_dict, event_to_json, sse_events, sse_message
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
    "TextDelta",
    "ToolCallFinished",
    "ToolCallStarted",
    "ToolResult",
    "VerifierDecision",
    "build_graph",
    "event_to_dict",
    "event_to_json",
    "sse_events",
    "sse_message",
]
