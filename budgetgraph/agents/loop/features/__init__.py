"""The loop's budget behaviours, one hook each: the budget block and regimes, turn control, read-first and
``min_reads``, the budget-aware stop and its go-on, the nudge, pace, pause at exhaustion, approval, the first
forced call and the paper's stop at the first exhausted tool."""

from .approval import Approval
from .budget_block import BudgetBlock
from .budget_stop import GO_ON, GO_ON_LIMIT, BudgetStop, GoOn, may_go_on
from .force_first import ForceFirstTool
from .nudge import Nudge
from .pace import Pace
from .pause import Pause
from .read_first import ReadFirst
from .stop_on_exhausted import StopOnExhausted
from .turn_limit import TurnLimit

__all__ = [
    "GO_ON",
    "GO_ON_LIMIT",
    "Approval",
    "BudgetBlock",
    "BudgetStop",
    "ForceFirstTool",
    "GoOn",
    "Nudge",
    "Pace",
    "Pause",
    "ReadFirst",
    "StopOnExhausted",
    "TurnLimit",
    "may_go_on",
]
