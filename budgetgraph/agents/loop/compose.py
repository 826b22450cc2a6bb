"""Hooks from options: each field of :class:`~budgetgraph.agents.options.AgentOptions` (and the agent's
``approve`` and ``on_exhausted="pause"``) builds its hook, in the order the loop calls them."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Literal

from ...budget.block import RegimePolicy, render_budget_block
from ...budget.ledger import Ledger
from ...budget.tool_block import render_tool_block
from ...tools.base import Tool
from ..need import NEED_LINE, need_example
from ..options import AgentOptions
from ..prompts import AnswerStyle, answer_manner
from ..turns import TurnControl
from .features import (
    Approval,
    BudgetBlock,
    BudgetStop,
    ForceFirstTool,
    GoOn,
    Pace,
    Pause,
    ReadFirst,
    StopOnExhausted,
    TurnLimit,
)
from .hooks import Hook

__all__ = ["block_renderer", "option_hooks"]


def block_renderer(
    tools: Sequence[Tool], kind: Literal["scarcest", "per_tool"], policy: RegimePolicy
) -> Callable[[Ledger], str]:
    """How the ``<budget>`` block is drawn: one regime from the scarcest resource, or the paper's per tool
    (a batched tool's units named as its list argument)."""
    units = {t.budget_key: t.units for t in tools if isinstance(t.units, str)}
    if kind == "per_tool":
        return lambda ledger: render_tool_block(ledger, units)
    return lambda ledger: render_budget_block(ledger, policy, units)


def option_hooks(
    options: AgentOptions,
    tools: Sequence[Tool],
    *,
    shows_budget: bool,
    block: Literal["scarcest", "per_tool"],
    turn_control: TurnControl | None = None,
    approve: Collection[str] = (),
    pause: bool = False,
    planner: Sequence[Hook] = (),
    first_block: bool = True,
    answer_style: AnswerStyle = "full",
) -> list[Hook]:
    """The hooks of a loop planner's run: its options' behaviours, the planner's own (``planner``, after the
    reading and go-on rules), then approval and the pause; ``first_block``: the first turn shows the block."""
    render = block_renderer(tools, block, options.regime_policy) if shows_budget else None
    need = (
        "\n" + NEED_LINE.format(example=need_example([t.name for t in tools])) if options.budget_stop else ""
    )
    acting: list[Hook] = [
        *([StopOnExhausted()] if options.stop_on_exhausted else []),
        *([TurnLimit(turn_control)] if turn_control is not None else []),
        *([ForceFirstTool()] if options.force_first_tool else []),
        *(
            [BudgetBlock(render, need, first_block and options.budget_intro)]
            if render is not None or need
            else []
        ),
    ]
    replies: list[Hook] = [
        *([BudgetStop()] if options.budget_stop else []),
        *([ReadFirst(options.min_reads, answer_manner(answer_style))] if options.asks_to_read else []),
        *([GoOn()] if options.budget_stop else []),
    ]
    tools_and_pause: list[Hook] = [
        *([Pace()] if options.pace and shows_budget else []),
        *([Approval(approve)] if approve else []),
        *([Pause(render)] if pause else []),
    ]
    return [*acting, *replies, *planner, *tools_and_pause]
