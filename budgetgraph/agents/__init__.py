"""Agents: graph state, the LangGraph loops built from the metering layer and the planners, the planner
registry and options, events and the Agent facade."""

from .agent import Agent
from .events import (
    AgentEvent,
    ApprovalRequest,
    BudgetGrant,
    BudgetOverrun,
    BudgetRequest,
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
from .options import (
    AgentOptions,
    BATSOptions,
    PlanAndBudgetOptions,
    SaleOptions,
    SamplingOptions,
)
from .orchestrator import Orchestrator, SubAgent
from .planners import parse_planner, planner_options
from .registry import PLANNERS, PlannerContext, PlannerSpec, get_planner, planner_names, register_planner
from .result import Delegated, Question, RunResult, Spawn, StopReason, SubRunner
from .runtime import RunContext
from .sale import Bidder
from .sse import event_to_dict, event_to_json, sse_events, sse_message
from .state import AgentState
from .threads import OnBusy, ThreadPolicy
from .turns import TurnControl, turn_control

__all__ = [
    "OnBusy",
    "ThreadPolicy",
    "PLANNERS",
    "Agent",
    "AgentEvent",
    "AgentLoop",
    "AgentOptions",
    "AgentState",
    "ApprovalRequest",
    "BATSOptions",
    "Bidder",
    "BudgetGrant",
    "BudgetRequest",
    "BudgetOverrun",
    "BudgetUpdate",
    "Delegated",
    "FinalAnswer",
    "LoopConfig",
    "ModelTurn",
    "Orchestrator",
    "PlanAndBudgetOptions",
    "PlannerContext",
    "PlannerSpec",
    "Question",
    "RunContext",
    "RunResult",
    "SaleOptions",
    "SamplingOptions",
    "Spawn",
    "StopReason",
    "SubAgent",
    "SubRunner",
    "TextDelta",
    "ToolCallFinished",
    "ToolCallStarted",
    "ToolResult",
    "TurnControl",
    "VerifierDecision",
    "build_graph",
    "event_to_dict",
    "event_to_json",
    "get_planner",
    "parse_planner",
    "planner_names",
    "planner_options",
    "register_planner",
    "sse_events",
    "sse_message",
    "turn_control",
]
