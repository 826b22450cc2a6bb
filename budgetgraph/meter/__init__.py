"""The metering layer: the only code that calls a model, runs a tool or reserves on a ledger.

Planners, graph nodes and environments ask it for metered calls. What a call reserves, how it is cut by the
run's deadline, what a failed or retried attempt costs, and what an overrun is, are decided here once.
"""

from .executor import SyncRunner, call_in_process
from .model_calls import MIN_OUTPUT, CallPlan, ModelMeter, plan_call
from .run import MeteredRun
from .tool_calls import SYNC_RUNNER, Admitted, Answered, ToolMeter, ToolOutcome, refusal_text, run_tool

__all__ = [
    "MIN_OUTPUT",
    "SYNC_RUNNER",
    "Admitted",
    "Answered",
    "CallPlan",
    "MeteredRun",
    "ModelMeter",
    "SyncRunner",
    "ToolMeter",
    "ToolOutcome",
    "call_in_process",
    "plan_call",
    "refusal_text",
    "run_tool",
]
