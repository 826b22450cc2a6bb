"""Metered tool calls: admit (validate, reserve units and price, trim a batch that does not fit), run under
the run's deadline, then commit or refund. The only code that runs a tool.

A call that does not fit is refused and never runs. A call of a ``cache=True`` tool identical to an earlier
successful one of the run is answered with that result, neither run nor charged. A tool that refuses before doing work
(:class:`ToolRejected`) is refunded; a tool that fails or times out after it started is charged (its work, or
a paid API call, may have happened). A call cut by the run's seconds cap is charged and ends the run.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel

from .. import tracing
from .._redact import redact
from ..budget.ledger import Ledger, Reservation
from ..budget.limits import TOOL_PREFIX, Amount, tool_key
from ..budget.prices import PriceTable
from ..budget.store import MAX_UNITS, from_units
from ..errors import (
    AccountExceeded,
    BudgetExceeded,
    Overrun,
    ToolCallError,
    ToolOverrun,
    ToolRejected,
    ToolTimeout,
)
from ..models.messages import ToolCall, ToolStatus
from ..tools.base import Failed, NotFound, Tool, Used
from .executor import SyncRunner, call_in_process

__all__ = ["REFUSALS", "Admitted", "Answered", "ToolMeter", "ToolOutcome", "refusal_text", "run_tool"]

_MARGIN = 0.05
REPEATED = (
    "[Repeated call: the same arguments as an earlier call of this run; its result again, not charged.]\n"
)
SYNC_RUNNER = SyncRunner()
"""The process's bounded pool of daemon threads for sync tools (the event loop's default executor is not used)."""


REFUSALS = ("Budget exhausted for ", "The account's budget for ")
"""How a refused call's result begins: the run's own cap, then an account's (shared with other runs)."""


def _shown(value: Any) -> str:
    """A number as a person reads it: 0 rather than 0E-9, 0.015 rather than 0.0150000."""
    text = str(value)
    if isinstance(value, (str, Decimal)):
        try:
            number = Decimal(text)
        except ArithmeticError:
            return text
        if number.is_finite():
            return format(number.normalize(), "f")
    return text


def refusal_text(exc: BudgetExceeded) -> str:
    label = exc.resource.removeprefix(TOOL_PREFIX)
    amounts = f"needed {_shown(exc.requested)}, {_shown(exc.remaining)} left of {_shown(exc.limit)}"
    if isinstance(exc, AccountExceeded):
        return f"{REFUSALS[1]}{label} (shared with other runs) is exhausted: {amounts}."
    return f"{REFUSALS[0]}{label}: {amounts}."


@dataclass(frozen=True, slots=True)
class Admitted:
    """A call the ledger admitted: its reservation is held until it is settled."""

    call: ToolCall
    tool: Tool
    args: BaseModel
    reservation: Reservation
    units: int
    cost: Decimal
    note: str = ""

    def record(self) -> dict[str, Any]:
        """Plain form for the checkpoint: what is in flight (counted as spent if the run dies now)."""
        return {"id": self.call.id, "tool": self.tool.name, "units": self.units, "cost": str(self.cost)}


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    text: str
    charged: bool
    seconds: float
    deadline: bool = False  # the run's seconds cap cut it
    status: ToolStatus = "ok"
    cost: Decimal = Decimal(0)
    """The dollars charged (the price reserved, or the cost the tool reported)."""
    overrun: Overrun | None = None
    """The tool reported a cost above its bound (or one that cannot be true): the run stops."""


@dataclass(frozen=True, slots=True)
class Answered:
    """A call answered without running its tool: malformed or unknown (``error``), or a cached result (``ok``)."""

    text: str
    status: ToolStatus


async def invoke(
    tool: Tool, args: BaseModel, timeout: float | None, runner: SyncRunner = SYNC_RUNNER
) -> tuple[str, int | None, ToolStatus]:
    """Run ``tool`` once: its text, the units it says it used (None: all it reserved), and ``ok`` or
    ``empty`` (it returned :class:`NotFound`)."""
    text, units, status, _ = await invoke_billed(tool, args, timeout, runner)
    return text, units, status


async def invoke_billed(
    tool: Tool, args: BaseModel, timeout: float | None, runner: SyncRunner = SYNC_RUNNER
) -> tuple[str, int | None, ToolStatus, Any]:
    """:func:`invoke`, plus the cost the tool reported (None when it reported none), unchecked."""
    kwargs = tool.kwargs(args)
    try:
        if tool.is_async:
            result = await asyncio.wait_for(tool.fn(**kwargs), timeout)
        elif tool.isolation == "process":
            result = await call_in_process(tool.fn, kwargs, timeout)
        else:
            result = await runner.run(tool.fn, kwargs, timeout)
    except asyncio.TimeoutError:
        raise ToolTimeout(f"{tool.name} timed out after {timeout:g}s; try a narrower call") from None
    units, cost = None, None
    if isinstance(result, Used):
        result, units, cost = result.result, result.units, result.cost
    if isinstance(result, NotFound):
        return tool.format_result(result.result), units, "empty", cost
    if isinstance(result, Failed):
        return tool.format_result(result.result), units, "error", cost
    return tool.format_result(result), units, "ok", cost


async def run_tool(
    tool: Tool, args: BaseModel, timeout: float | None, runner: SyncRunner = SYNC_RUNNER
) -> str:
    """Run ``tool`` once with parsed ``args`` (async on the loop, sync on daemon threads or in a process)."""
    text, _, _ = await invoke(tool, args, timeout, runner)
    return text


class ToolMeter:
    """The tools of one run, charged to its ledger."""

    def __init__(
        self,
        tools: Mapping[str, Tool],
        ledger: Ledger,
        prices: PriceTable | None = None,
        runner: SyncRunner = SYNC_RUNNER,
    ) -> None:
        self.tools = tools
        self.ledger = ledger
        self.prices = prices or PriceTable()
        self.runner = runner
        self._results: dict[tuple[str, str], tuple[str, ToolStatus]] = {}
        """Results of the ``cache=True`` tools' successful calls, by tool and arguments."""

    def amounts(self, tool: Tool, units: int) -> dict[str, Amount]:
        amounts: dict[str, Amount] = {tool_key(tool.budget_key): units, "tool_calls": units}
        price = self.prices.tool_price(tool.name, tool.price)
        if price:
            amounts["usd"] = price * units
        return amounts

    def record(self, call: ToolCall) -> BudgetExceeded | None:
        """Charge a call that is recorded, never run (a single-call planner's answer is its calls, scored as
        made): its tool's amounts (one unit when its arguments do not parse; one tool call for a name the run
        does not have), reserved and committed at once; the refusal when it does not fit."""
        tool = self.tools.get(call.name)
        if tool is None:
            amounts: dict[str, Amount] = {"tool_calls": 1}
        else:
            try:
                units = tool.units_for(tool.validate(call.arguments))
            except Exception:  # scored as made: a call that does not parse is still one call
                units = 1
            amounts = self.amounts(tool, units)
        held = self.ledger.try_reserve(amounts)
        if isinstance(held, BudgetExceeded):
            return held
        self.ledger.commit(held)
        return None

    def available(self) -> list[Tool]:
        """Tools with units left (their own cap and the total tool cap)."""
        return [t for t in self.tools.values() if self.ledger.tool_remaining(t.budget_key) != 0]

    def parse(self, call: ToolCall) -> tuple[Tool, BaseModel] | Answered:
        """The call's tool and validated arguments, or an error for the model."""
        if call.error:
            return Answered(f"Error: {call.error}. The call was not run; fix it and try again.", "error")
        tool = self.tools.get(call.name)
        if tool is None:
            return Answered(
                f"Error: unknown tool {call.name!r}; available tools: {', '.join(self.tools)}.", "error"
            )
        try:
            return tool, tool.validate(call.arguments)
        except ToolCallError as exc:
            return Answered(f"Error: {exc}. The call was not run.", "error")

    def admit(self, call: ToolCall, most: int | None = None) -> Admitted | BudgetExceeded | Answered:
        """Validate and reserve one call: the admitted call, the refusal, or an answer without running it
        (an error, or a cached result). ``most`` is the units the call may use this turn (the budget
        block's pace): a batch beyond it runs its first items, another call is told to wait a turn."""
        parsed = self.parse(call)
        if isinstance(parsed, Answered):
            return parsed
        tool, args = parsed
        if tool.cache and (seen := self._results.get(_key(tool, args))) is not None:
            return Answered(REPEATED + seen[0], seen[1])
        try:
            units = tool.units_for(args)
        except Exception as exc:  # the tool's own units= callback: its bug, not the run's end
            return Answered(
                f"Error: tool {tool.name} could not size this call ({type(exc).__name__}: {exc}). The call "
                "was not run.",
                "error",
            )
        paced = ""
        if most is not None and units > most:
            if most < 1 or not (isinstance(tool.units, str) and tool.trim_batches):
                return Answered(
                    f"Error: the budget allows no more {tool.name} this turn (it paces a small cap over "
                    "several turns). The call was not run and not charged; read what you have, or call it "
                    "again next turn.",
                    "error",
                )
            items = list(getattr(args, tool.units) or [])
            args = args.model_copy(update={tool.units: items[:most]})
            paced = (
                f"[Budget: this turn allows {most} {tool.units}; the first {most} of {units} were run, "
                "the rest can be asked next turn.]\n"
            )
            units = most
        held = self.ledger.try_reserve(self.amounts(tool, units))
        if not isinstance(held, BudgetExceeded):
            return self._admitted(call, tool, args, held, units, paced)
        if not (isinstance(tool.units, str) and tool.trim_batches and units > 1):
            return held
        items = list(getattr(args, tool.units) or [])
        for n in range(units - 1, 0, -1):  # a batch that does not fit runs its first items that do
            part = self.ledger.try_reserve(self.amounts(tool, n))
            if not isinstance(part, BudgetExceeded):
                trimmed = args.model_copy(update={tool.units: items[:n]})
                note = (
                    f"[Budget: only the first {n} of {units} {tool.units} were run; {units - n} skipped.]\n"
                )
                return self._admitted(call, tool, trimmed, part, n, note)
        return held

    def _admitted(
        self, call: ToolCall, tool: Tool, args: BaseModel, held: Reservation, units: int, note: str = ""
    ) -> Admitted:
        cost = held.amounts.get("usd", Decimal(0))
        return Admitted(call, tool, args, held, units, Decimal(cost), note)

    def _timeout(self, tool: Tool) -> tuple[float | None, bool]:
        """The call's timeout and whether the run's seconds cap (not the tool's own) sets it."""
        left = self.ledger.available("seconds")
        if left is None:
            return tool.timeout, False
        cap = max(float(left) - _MARGIN, 0.001)
        if tool.timeout is None or cap < tool.timeout:
            return cap, True
        return tool.timeout, False

    async def run(self, admitted: Admitted) -> ToolOutcome:
        """Run an admitted call and settle its reservation (refund on ToolRejected, else commit)."""
        tool, started = admitted.tool, time.monotonic()
        timeout, by_cap = self._timeout(tool)
        charged, deadline, status = True, False, "ok"
        attrs = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool.name,
            "gen_ai.tool.call.id": admitted.call.id,
            "budgetgraph.tool.units": admitted.units,
            "budgetgraph.tool.cost_usd": float(admitted.cost),
        }
        with tracing.span(f"execute_tool {tool.name}", attrs) as span:
            used: int | None = None
            billed: Any = None
            status_now: ToolStatus = "error"
            try:
                text, used, status_now, billed = await invoke_billed(
                    tool, admitted.args, timeout, self.runner
                )
            except ToolRejected as exc:
                self.ledger.refund(admitted.reservation)
                charged = False
                text = f"Error: {exc} (not charged)"
            except ToolCallError as exc:
                deadline = by_cap and isinstance(exc, ToolTimeout)
                text = (
                    f"Error: {tool.name} was stopped by the run's time budget (seconds); it is charged."
                    if deadline
                    else f"Error: {exc}"
                )
            except asyncio.CancelledError:
                self.ledger.commit(admitted.reservation)  # it may have done its work: charged
                raise
            except (Exception, SystemExit) as exc:  # a tool's own bug (or sys.exit) must not end the run
                text = f"Error: tool {tool.name} raised {type(exc).__name__}: {exc}"
            status = status_now
            if tool.cache and charged and status != "error":
                self._results[_key(tool, admitted.args)] = (text, status)
            cost, overrun = Decimal(0), None
            if charged:
                units = used if used is not None and 0 <= used < admitted.units else admitted.units
                actual = dict(
                    admitted.reservation.amounts if units == admitted.units else self.amounts(tool, units)
                )
                if billed is not None:  # the bound was reserved; the billed cost is what is charged
                    bound = Decimal(actual.get("usd", 0))
                    billed, overrun = checked_cost(tool.name, billed, bound, self.ledger.caps("usd"))
                    actual["usd"] = billed
                cost = Decimal(actual.get("usd", 0))
                self.ledger.commit(admitted.reservation, actual)
            tracing.set_attributes(
                span,
                {
                    "budgetgraph.tool.charged": charged,
                    "budgetgraph.tool.error": status == "error",
                    "budgetgraph.tool.cost_usd": float(cost),
                    "budgetgraph.tool.cost_reported": billed is not None,
                    "budgetgraph.tool.overrun": overrun is not None,
                },
            )
        tracing.record_cost(f"tool.{tool.name}", float(cost))
        seconds = time.monotonic() - started
        # what a tool returns or raises goes to the model provider next: a credential in it never does
        return ToolOutcome(admitted.note + redact(text), charged, seconds, deadline, status, cost, overrun)

    async def rerun(self, call: ToolCall) -> Answered:
        """A call that was in flight when the run stopped, already counted as spent, run again (its tool is
        idempotent) under the run's deadline like any call; it is not charged twice."""
        parsed = self.parse(call)
        if isinstance(parsed, Answered):
            return parsed
        tool, args = parsed
        timeout, by_cap = self._timeout(tool)
        if by_cap and self.ledger.available("seconds") == 0:
            return Answered(
                "Error: the run's time budget (seconds) is spent; the call was not run again.", "error"
            )
        attrs = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool.name,
            "budgetgraph.rerun": True,
        }
        with tracing.span(f"execute_tool {tool.name}", attrs):
            try:
                text, _, status = await invoke(tool, args, timeout, self.runner)
            except ToolCallError as exc:
                return Answered(redact(f"Error: {exc}"), "error")
            except (Exception, SystemExit) as exc:
                return Answered(
                    redact(f"Error: tool {tool.name} raised {type(exc).__name__}: {exc}"), "error"
                )
        return Answered(redact(text), status)


MOST_USD = from_units("usd", MAX_UNITS)
"""The most dollars one report can claim and be believed (what a budget store keeps exactly, about $9M)."""
CREDIBLE = 10
"""A priced tool's report above this multiple of its price bound is not believed: it is charged the bound."""


def checked_cost(
    name: str, reported: Any, bound: Decimal, capped: bool = True
) -> tuple[Decimal, Overrun | None]:
    """What a call that reported ``reported`` dollars is charged, and the overrun that stops the run. A report
    that cannot be true (negative, not a number, absurd, or above ``CREDIBLE`` times a priced tool's bound) is
    charged the bound; one above the bound is charged as reported. Either stops the run only where dollars
    are ``capped`` (by the run, a parent or an account): with no dollar cap nothing is overrun."""
    try:
        cost = Decimal(str(reported).strip()) if not isinstance(reported, bool) else Decimal("NaN")
    except (InvalidOperation, ValueError):
        cost = Decimal("NaN")
    lie = not cost.is_finite() or cost < 0 or cost > MOST_USD or (bound > 0 and cost > bound * CREDIBLE)
    charged = bound if lie else cost
    if (lie or cost > bound) and capped:
        return charged, ToolOverrun(name, bound, reported, charged)
    return charged, None


def _key(tool: Tool, args: BaseModel) -> tuple[str, str]:
    return tool.name, json.dumps(args.model_dump(mode="json"), sort_keys=True)
