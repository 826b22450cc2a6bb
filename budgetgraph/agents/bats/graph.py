"""The BATS graph on the core loop: plan -> act <-> tools -> verify -> (act | plan | select), every call through
the ledger. The acting step is the core's, steered by BATS's hook; the final-answer reserve covers one verifier
and one selection call, so BATS never overshoots a cap."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from langgraph.graph import StateGraph

from ...budget.block import render_policy
from ...budget.tool_block import render_tool_policy
from ...planners.bats_wording import wording
from ..loop.build import build_loop
from ..loop.core import LoopCore
from ..options import BATSOptions
from ..registry import PlannerContext
from .acting import BatsHook
from .attempts import BATS_STATE, Setup
from .steps import BatsSteps

__all__ = ["bats_graph"]


def bats_graph(ctx: PlannerContext) -> StateGraph[Any, Any]:
    """BATS for the agent of ``ctx``: its options (``BATSOptions``), prompts, tools and hooks."""
    options = ctx.options
    if not isinstance(options, BATSOptions):
        options = BATSOptions(**ctx.options.common())
    words = wording(ctx.answer_style)
    settings = ctx.settings
    policy = ""
    if ctx.shows_budget:
        policy = render_tool_policy() if ctx.block == "per_tool" else render_policy(options.regime_policy)
    setup = Setup(
        options=options,
        words=words,
        key=options.answer_key,
        system="\n\n".join(p for p in (ctx.system_prompt or words.system, ctx.instructions) if p),
        policy=policy,
        verify_tokens=max(settings.answer_max_tokens, 384),
        answer_tokens=settings.answer_max_tokens,
    )
    # the answer reserve of the BATS graph: one verifier and one selection call
    held = replace(settings, hold_calls=2, hold_output=setup.verify_tokens + settings.answer_max_tokens)
    core = LoopCore(held, ctx.hooks(BatsHook(setup), first_block=False))
    steps = BatsSteps(core, setup)
    nodes = {"plan": steps.plan_node, "verify": steps.verify_node, "select": steps.select_node}
    return build_loop(core, nodes=nodes, entry="plan", model="act", answer="select", state=BATS_STATE)
