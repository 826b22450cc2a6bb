"""How the facade's arguments become a planner's parts: checked arguments, the core loop's settings, the run's
budget (per run: ``arun(budget=...)``, the agent's own by default) and turn control."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..budget.ledger import Ledger
from ..budget.limits import Budget, closest
from ..budget.prices import PriceTable
from ..errors import ConfigError
from ..models.base import ChatModel
from ..tools.base import Tool
from .need import NEED_ASK, need_example
from .options import AgentOptions
from .registry import get_planner, make_options
from .turns import TurnControl, baseline_turns, turn_control

__all__ = [
    "check_arguments",
    "check_budget_keys",
    "run_budget",
    "sub_options",
    "turn_control_of",
    "with_need",
]


def check_arguments(
    tools: Sequence[Tool],
    *,
    on_exhausted: str,
    budget_scope: str,
    answer_style: str,
    checkpointer: Any,
    approve: frozenset[str],
    output_type: Any,
) -> None:
    """The facade's arguments that need one another (a pause or a thread budget needs a checkpointer)."""
    if on_exhausted not in ("answer", "raise", "pause"):
        raise ConfigError(f"on_exhausted must be 'answer', 'raise' or 'pause', not {on_exhausted!r}")
    if on_exhausted == "pause" and checkpointer is None:
        raise ConfigError(
            "on_exhausted='pause' waits for a grant in the run's checkpoint: pass checkpointer= (e.g. "
            "langgraph.checkpoint.sqlite.aio.AsyncSqliteSaver, to resume in another process)"
        )
    if budget_scope not in ("run", "thread"):
        raise ConfigError("budget_scope must be 'run' (a budget per arun) or 'thread' (per conversation)")
    if budget_scope == "thread" and checkpointer is None:
        raise ConfigError(
            "budget_scope='thread' keeps the ledger in the thread's checkpoint: pass checkpointer="
        )
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        raise ConfigError(f"tool names must be unique, got {names}")
    if approve and checkpointer is None:
        raise ConfigError(
            "approve= pauses the run until a decision comes, which needs a checkpointer: pass "
            "checkpointer= (e.g. langgraph.checkpoint.memory.InMemorySaver())"
        )
    if unknown := sorted(approve - set(names) - {"*"}):
        raise ConfigError(f"approve= names tools the agent does not have: {unknown}; its tools: {names}")
    if output_type is not None and not (isinstance(output_type, type) and issubclass(output_type, BaseModel)):
        raise ConfigError(f"output_type must be a pydantic model class, not {output_type!r}")
    if answer_style not in ("full", "short", "code"):
        raise ConfigError(f"answer_style must be 'full', 'short' or 'code', not {answer_style!r}")


def check_budget_keys(budget: Budget, capped: Sequence[str]) -> None:
    """A tool cap that names none of the agent's tools (or budget keys) caps nothing: refuse it, with the
    closest name."""
    for name in budget.tool_calls:
        if name not in capped:
            raise ConfigError(
                f"the budget caps {name!r}, which is not a tool (or budget key) of this agent"
                f"{closest(name, capped)}; its tools: {', '.join(capped) or 'none'}"
            )


def run_budget(
    given: Budget | str | None,
    tools: Sequence[Tool],
    turns: TurnControl | None,
    model: ChatModel,
    prices: PriceTable,
) -> Budget:
    """A run's budget: the string grammar over the agent's tools, checked against them, with turn control's cap;
    with a dollar cap, the model's price must be known (an error before any spend, never a silent zero)."""
    capped = list(dict.fromkeys(t.budget_key for t in tools))
    if given is not None and not isinstance(given, Budget | str):
        raise ConfigError(f"a budget is a Budget or a string such as 'search=5,usd=0.02', not {given!r}")
    budget = Budget.parse(given, capped) if isinstance(given, str) else (given or Budget())
    check_budget_keys(budget, capped)
    if turns is not None:
        if budget.turns is not None and budget.turns != turns.cap:
            raise ConfigError("give the turn cap once: turn_cap= or the budget's turns=, not both")
        budget = replace(budget, turns=turns.cap)
    if budget.usd is not None:
        prices.require_model_price(model.name, model.price, getattr(model, "provider", None))
    return budget


def turn_control_of(
    cap: int | str | TurnControl | None, baseline: Sequence[int] | str | Path | None, planner: str
) -> TurnControl | None:
    """``turn_cap``: a number, ``"p75"`` or ``"dynamic"`` over ``turn_baseline`` (turn counts, or a results
    file whose episodes of the same planner are the uncapped baseline)."""
    if cap is None or isinstance(cap, TurnControl):
        return cap
    if isinstance(baseline, str | Path):
        baseline = baseline_turns(baseline, planner=planner)
    return turn_control(cap, baseline)


def sub_options(
    parent: AgentOptions, planner: str, options: AgentOptions | None, turns: TurnControl | None
) -> AgentOptions:
    """A sub-run's options: ``options`` of its planner (a single-run one), over the parent's common ones (a BATS
    parent's BATS options for BATS samples), with the parent's turn control and no block or interrupts."""
    spec = get_planner(planner)
    if spec.build is None or spec.runs_sub_agents:
        raise ConfigError(f"a sub-run's planner must be a single-run planner such as react, not {planner!r}")
    common = {**parent.common(), "budget_block": None, "interrupt_before": ()}
    if options is None and type(parent) is spec.options is not AgentOptions:
        options = replace(parent, budget_block=None, interrupt_before=())
    return replace(make_options(spec, options, defaults=common), turn_cap=turns, turn_baseline=None)


def with_need(instructions: str | None, budget_stop: bool, tools: Sequence[str]) -> str | None:
    """The instructions, plus the budget-aware stop's request for estimates when it is on."""
    if not budget_stop:
        return instructions
    ask = NEED_ASK.format(example=need_example(tools))
    return f"{instructions}\n\n{ask}" if instructions else ask


def recap(ledger: Ledger, budget: Budget) -> None:
    """A resumed run's new caps: every resource ``budget`` caps, set on the run's ledger (a resource the run
    did not cap, or a cap under what is spent, is an error before anything changes)."""
    caps = budget.limits()
    missing = sorted(k.removeprefix("tool:") for k in caps if k not in ledger.limits)
    if missing:
        raise ConfigError(
            f"a resumed run keeps the resources it capped; it does not cap {', '.join(missing)}: give a budget "
            "over its own resources (its final-answer reserve was sized for them)"
        )
    for key, cap in caps.items():
        spent = ledger.spent(key)
        if cap < spent:
            raise ConfigError(
                f"{key.removeprefix('tool:')} cannot be capped at {cap}: {spent} is already spent"
            )
    for key, cap in caps.items():
        ledger.set_cap(key, cap, by="resume")
