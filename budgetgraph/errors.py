"""Exceptions raised by budgetgraph.

BudgetgraphError
├── ConfigError          bad user input: a budget string, a model spec, a price file, a corpus file
│   ├── MissingExtra     an optional dependency is not installed (names the pip command)
│   └── PriceError       a dollar cap is set and a model or tool has no known price
├── BudgetExceeded       a reservation does not fit a cap (resource, requested, remaining)
│   ├── AccountExceeded  ... a cap of a budget store's account (user, tenant, key) over its window
│   ├── BudgetExhausted  a run stopped on a budget with on_exhausted="raise" (carries the partial result)
│   └── DeadlineExceeded the seconds cap cut a call short (what it used is charged)
├── BudgetStoreError     a budget store could not be read or written (the call is not made)
├── ThreadBusy           another request holds the conversation thread (a run, resume or cap change)
├── Overrun              a backend reported more than was reserved: the truth is committed, the run stops
│   ├── ToolOverrun      a tool billed more than its price bound (or an impossible cost)
│   └── BadUsage         a backend's usage report cannot be true (negative, NaN, missing): charged at the bound
├── ModelError           a model backend failed after its retries (names the backend and what to check)
└── ToolCallError        a tool call was malformed, raised or timed out (shown to the model, never fatal)
    ├── ToolRejected     the tool refused the call before doing any work: it is refunded, not charged
    └── ToolTimeout      the call ran out of time (its own timeout, or the run's seconds cap)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AccountExceeded",
    "BudgetExceeded",
    "BudgetStoreError",
    "BudgetExhausted",
    "BadUsage",
    "BudgetgraphError",
    "ConfigError",
    "DeadlineExceeded",
    "MissingExtra",
    "ModelError",
    "Overrun",
    "ToolOverrun",
    "PriceError",
    "ToolCallError",
    "ThreadBusy",
    "ToolRejected",
    "ToolTimeout",
]


class BudgetgraphError(Exception):
    """Base class of every budgetgraph error."""


class ConfigError(BudgetgraphError, ValueError):
    """User input that cannot be used; the message says what was wrong and how to fix it."""


class MissingExtra(ConfigError, ImportError):
    """An optional dependency is missing."""

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(
            f"this feature needs the optional dependency {module!r}: install it with "
            f"pip install 'budgetgraph[{extra}]'"
        )
        self.extra = extra
        self.module = module


class PriceError(ConfigError):
    """A dollar cap is set but a price is unknown (never silently zero)."""


class BudgetExceeded(BudgetgraphError):
    """A reservation was refused because it does not fit the remaining budget."""

    def __init__(self, resource: str, requested: Any, remaining: Any, limit: Any) -> None:
        super().__init__(
            f"budget for {resource} exhausted: needs {requested}, {remaining} remaining of {limit}"
        )
        self.resource = resource
        self.requested = requested
        self.remaining = remaining
        self.limit = limit


class AccountExceeded(BudgetExceeded):
    """A reservation does not fit what an account of a budget store has left in its current window."""

    def __init__(
        self, resource: str, requested: Any, remaining: Any, limit: Any, *, account: str, window: str
    ) -> None:
        BudgetgraphError.__init__(
            self,
            f"budget for {resource} of account {account!r} ({window}) exhausted: needs {requested}, "
            f"{remaining} remaining of {limit}",
        )
        self.resource, self.requested, self.remaining, self.limit = resource, requested, remaining, limit
        self.account = account
        self.window = window


class BudgetStoreError(BudgetgraphError):
    """A budget store failed (database locked for too long, Redis unreachable): the call is not made."""


class ThreadBusy(BudgetgraphError):
    """Another request holds the thread: a run, resume, grant, approval or cap change is under way on it (or
    took it over from this request, which stalled past its lease: ``lost``). Nothing of this request ran."""

    def __init__(
        self, thread_id: str, held_for: float, waited: float | None = None, *, lost: bool = False
    ) -> None:
        if lost:
            said = (
                f"thread {thread_id!r} was taken over by another request while this one stalled past its lease; "
                "this run stops before its next step (nothing it had not checkpointed is kept)"
            )
        else:
            when = f"after waiting {waited:.1f} s " if waited is not None else ""
            said = (
                f"this conversation is busy: thread {thread_id!r} is held by another run, resume or cap change "
                f"{when}(its lease has {held_for:.1f} s left unless renewed). Try again when it ends, or pass "
                "on_busy='enqueue' to wait in turn"
            )
        super().__init__(said)
        self.thread_id = thread_id
        self.held_for = held_for
        self.waited = waited
        self.lost = lost


class BudgetExhausted(BudgetgraphError):
    """A run ended on a budget and the agent was configured with on_exhausted="raise"."""

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result


class DeadlineExceeded(BudgetExceeded):
    """The run's seconds cap ended a call part-way; the call is charged what it used."""

    def __init__(self, what: str, limit: Any) -> None:
        BudgetgraphError.__init__(self, f"the seconds cap ({limit} s) ended {what} part-way")
        self.resource, self.requested, self.remaining, self.limit = "seconds", "more time", 0, limit


class Overrun(BudgetgraphError):
    """A backend reported more than its call reserved (e.g. a server that ignores max_tokens). The true usage
    is committed, and the run stops at once with stop reason ``overrun``."""

    def __init__(self, resource: str, reserved: Any, reported: Any, model: str = "") -> None:
        where = f" by {model}" if model else ""
        super().__init__(
            f"overrun{where}: {resource} reserved {reserved}, reported {reported}; the reported figure is "
            "charged and the run stops (check the server's max_tokens handling and token counts)"
        )
        self.resource = resource
        self.reserved = reserved
        self.reported = reported
        self.source = model


class BadUsage(Overrun):
    """A backend's usage report cannot be true (a negative, NaN, missing or absurd count). The call is charged
    what it reserved (its bound), and the run stops with stop reason ``overrun``."""

    def __init__(self, fault: str, reserved: Any, model: str = "") -> None:
        where = f" from {model}" if model else ""
        BudgetgraphError.__init__(
            self,
            f"invalid usage report{where}: {fault}; the call is charged its reservation ({reserved}) and the "
            "run stops (check the server's usage reporting; a proxy may be rewriting it)",
        )
        self.resource = "usage"
        self.reserved = reserved
        self.reported = fault
        self.source = model


class ToolOverrun(Overrun):
    """A tool reported a billed cost above the price bound its call reserved (the billed cost is charged), or
    one that cannot be true (negative, not a number: the bound is charged); the run stops with ``overrun``."""

    def __init__(self, tool: str, bound: Any, reported: Any, charged: Any) -> None:
        BudgetgraphError.__init__(
            self,
            f"overrun by the tool {tool}: it reported a cost of {reported!r} dollars against a bound of {bound}; "
            f"{charged} is charged and the run stops (give the tool a price= at least its dearest call, and "
            "make it report dollars as a non-negative number)",
        )
        self.resource = "usd"
        self.reserved = bound
        self.reported = reported
        self.source = f"tool {tool}"


class ModelError(BudgetgraphError):
    """A model call failed for good (after retries)."""


class ToolCallError(BudgetgraphError):
    """A tool call could not be run or failed; its message goes back to the model."""


class ToolTimeout(ToolCallError):
    """A tool call ran past its timeout (the tool's own, or what the run's seconds cap left): it is charged."""


class ToolRejected(ToolCallError):
    """Raised by a tool that refuses a call before doing any work (wrong input, tool disabled): no charge."""
