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
from .loop import Batch, Hook, Jump, LoopSettings, Reply, ToolsDone, Turn, build_loop, loop_graph
from .loop.features import (
    Approval,
    BudgetBlock,
    BudgetStop,
    ForceFirstTool,
    GoOn,
    Nudge,
    Pace,
    Pause,
    ReadFirst,
    StopOnExhausted,
    TurnLimit,
)
from .options import (
    AgentOptions,
    BATSOptions,
    MCTSOptions,
    PlanAndBudgetOptions,
    SaleOptions,
    SamplingOptions,
)
from .orchestrator import Orchestrator, SubAgent
from .planners import parse_planner, planner_options
from .registry import PLANNERS, PlannerContext, PlannerSpec, get_planner, planner_names, register_planner
from .result import Delegated, Question, RunResult, Spawn, StopKind, StopReason, SubRunner
from .runtime import RunContext
from .sale import Bidder
from .sse import event_to_dict, event_to_json, sse_events, sse_message
from .state import AgentState
from .threads import OnBusy, ThreadPolicy
from .turns import TurnControl, turn_control

__all__ = [
    "PLANNERS",
    "Agent",
    "AgentEvent",
    "AgentOptions",
    "AgentState",
    "Approval",
    "ApprovalRequest",
    "BATSOptions",
    "Batch",
    "Bidder",
    "BudgetBlock",
    "BudgetGrant",
    "BudgetOverrun",
    "BudgetRequest",
    "BudgetStop",
    "BudgetUpdate",
    "Delegated",
    "FinalAnswer",
    "ForceFirstTool",
    "GoOn",
    "Hook",
    "Jump",
    "LoopSettings",
    "MCTSOptions",
    "ModelTurn",
    "Nudge",
    "OnBusy",
    "Orchestrator",
    "Pace",
    "Pause",
    "PlanAndBudgetOptions",
    "PlannerContext",
    "PlannerSpec",
    "Question",
    "ReadFirst",
    "Reply",
    "RunContext",
    "RunResult",
    "SaleOptions",
    "SamplingOptions",
    "Spawn",
    "StopKind",
    "StopOnExhausted",
    "StopReason",
    "SubAgent",
    "SubRunner",
    "TextDelta",
    "ThreadPolicy",
    "ToolCallFinished",
    "ToolCallStarted",
    "ToolResult",
    "ToolsDone",
    "Turn",
    "TurnControl",
    "TurnLimit",
    "VerifierDecision",
    "build_loop",
    "event_to_dict",
    "event_to_json",
    "get_planner",
    "loop_graph",
    "parse_planner",
    "planner_names",
    "planner_options",
    "register_planner",
    "sse_events",
    "sse_message",
    "turn_control",
]
