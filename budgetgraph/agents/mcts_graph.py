"""The ``mcts`` planner: cost-augmented MCTS plans over the episode's costed world (the model, unless the prior is
uniform, scores the available tools once per plan), the plan's tool calls run through the meter, and it re-plans
when a call is refused by the world or an event changes it. Every call reserves on the run's ledger (and its
account), as in every other planner."""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Hashable, Sequence
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from ..errors import BudgetExceeded, ConfigError, ModelError, Overrun
from ..meter import Answered, MeteredRun
from ..models.messages import Message, ToolCall
from ..planners.mcts import CostedWorld, mcts_search
from .options import MCTSOptions
from .registry import PlannerContext
from .result import stop_info
from .runtime import RunContext, forget, resolve_run, user_messages
from .state import AgentState, StopInfo

__all__ = ["STEP_LIMIT", "mcts_graph"]

STEP_LIMIT = 20
"""Plans an episode makes at most (each re-plan after an event or a refused step is one)."""


def _fixed(weights: dict[str, float]) -> Any:
    """A prior that gives every state the same per-action weights."""

    def prior(state: object, options: Sequence[tuple[str, float]]) -> dict[str, float]:
        return weights

    return prior


async def _prior(run: MeteredRun, world: CostedWorld, remaining: float, max_tokens: int) -> dict[str, float]:
    """One metered model call: a 0-10 score per available action, as JSON ({} when it cannot be had)."""
    try:
        response = await run.models.ask(
            [Message.user(world.prior_prompt(remaining))], role="plan", max_tokens=max_tokens
        )
    except BudgetExceeded:
        return {}
    match = re.search(r"\{.*\}", response.message.content, re.DOTALL)
    try:
        scores = json.loads(match.group(0)) if match else {}
    except json.JSONDecodeError:
        return {}
    if not isinstance(scores, dict):
        return {}
    return {str(k): float(v) + 0.5 for k, v in scores.items() if isinstance(v, int | float) and v >= 0}


def mcts_graph(ctx: PlannerContext) -> StateGraph[AgentState, RunContext]:
    """One node that plans and acts until the goal, an infeasible budget or a refused call."""
    options = ctx.options
    if not isinstance(options, MCTSOptions) or options.world is None:
        raise ConfigError(
            "the mcts planner acts in a costed world its environment gives (MCTSOptions(world=...)): run it "
            "with 'budgetgraph eval costplan --planner mcts', or pass your own CostedWorld"
        )
    world: CostedWorld = options.world
    cfg = ctx.settings

    async def plan_and_act(state: AgentState, runtime: Runtime[Any]) -> dict[str, Any]:
        run = resolve_run(state, runtime, cfg.new_run)
        messages: list[Message] = [*user_messages(state)]
        try:
            answer, info = await _episode(run, world, options, messages, cfg.max_tokens, messages[0].content)
        except Overrun as exc:  # a tool or the model billed more than its bound: the run stops (loud)
            answer, info = None, stop_info("overrun", exc.resource, str(exc))
        forget(run)
        return {
            "messages": messages[len(user_messages(state)) :],
            "answer": answer,
            "stop": info,
            "phase": "done",
            "run_id": run.id,
            "ledger": run.ledger.snapshot(),
        }

    graph: StateGraph[AgentState, RunContext] = StateGraph(AgentState, context_schema=RunContext)
    graph.add_node("plan_and_act", plan_and_act)
    graph.add_edge(START, "plan_and_act")
    graph.add_edge("plan_and_act", END)
    return graph


async def _episode(
    run: MeteredRun,
    world: CostedWorld,
    options: MCTSOptions,
    messages: list[Message],
    max_tokens: int,
    seed: str,
) -> tuple[str | None, StopInfo]:
    """Plan, act on the plan, re-plan after a change, until the goal or a stop; appends the calls to
    ``messages`` and returns the answer and why it stopped."""
    info = stop_info("answered")
    for _ in range(STEP_LIMIT):
        remaining = run.ledger.remaining("usd")
        room = float(remaining) if remaining is not None else 1e12
        try:
            weights = await _prior(run, world, room, max_tokens) if options.prior == "model" else {}
        except (Overrun, ModelError) as exc:
            kind = "overrun" if isinstance(exc, Overrun) else "error"
            return None, stop_info(kind, getattr(exc, "resource", "model"), str(exc))
        found = mcts_search(
            world.problem(),
            world.state,
            room,
            iterations=options.iterations,
            prior_mix=options.prior_mix,
            prior=_fixed(weights) if weights else None,
            seed=zlib.crc32(seed.encode()),
        )
        if not found.feasible:
            messages.append(Message.assistant(f"<answer>infeasible</answer> ({found.reason})"))
            return "infeasible", info
        replan, refused = await _act(run, world, found.plan, messages)
        if refused is not None:
            info = refused
            break
        if world.done:
            answer = world.answer()
            messages.append(Message.assistant(f"<answer>{answer}</answer>"))
            return answer, info
        if not replan:
            break
    return None, info


async def _act(
    run: MeteredRun, world: CostedWorld, plan: Sequence[str], messages: list[Message]
) -> tuple[bool, StopInfo | None]:
    """Run the plan's calls in order: whether to re-plan (the world refused a step, or changed), and the stop
    when the budget refused a call."""
    for name in plan:
        call = ToolCall(f"call_{len(messages)}_{name}", name, dict(world.arguments(name)))
        messages.append(Message.assistant("", [call]))
        admitted = run.tools.admit(call)
        if isinstance(admitted, BudgetExceeded):
            messages.pop()
            return False, stop_info("budget_exhausted", admitted.resource, str(admitted))
        if isinstance(admitted, Answered):
            messages.append(Message.tool(admitted.text, call.id, name, admitted.status))
            return True, None
        before: Hashable = world.changes
        outcome = await run.tools.run(admitted)
        messages.append(Message.tool(outcome.text, call.id, name, outcome.status))
        if outcome.overrun is not None:
            raise outcome.overrun
        if not outcome.charged or world.changes != before:  # refused by the world, or it changed: re-plan
            return True, None
    return False, None
