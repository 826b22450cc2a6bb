"""Planner options: :class:`AgentOptions` (what every planner's loop takes) and one frozen class per planner
that has options of its own, each validated where it is defined. ``Agent(options=...)`` takes one of them."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

from ..budget.block import REGIME_POLICY, RegimePolicy
from ..errors import ConfigError
from ..planners.bats import BATSOptions as BATSSteering
from ..planners.mcts import DEFAULT_PRIOR_MIX
from .turns import TurnControl

if TYPE_CHECKING:
    from ..models.base import ChatModel
    from ..planners.mcts import CostedWorld
    from ..planners.sale import SaleWeights
    from .auction_memory import AuctionMemory

__all__ = [
    "LEGACY_KEYWORDS",
    "AgentOptions",
    "BATSOptions",
    "Bidder",
    "MCTSOptions",
    "PlanAndBudgetOptions",
    "SaleOptions",
    "SamplingOptions",
    "option_names",
]


@dataclass(frozen=True, slots=True)
class Bidder:
    """An agent of SALE's pool: its model and price in $ per million tokens (the auction's cost term)."""

    name: str
    model: ChatModel
    price: float


BudgetBlock = Literal["scarcest", "per_tool"]
AnswerKey = Callable[[str | None], Hashable]


@dataclass(frozen=True, kw_only=True)
class AgentOptions:
    """What every planner's loop takes. ``force_first_tool`` makes the first turn a tool call when tools are
    given (small models otherwise answer from memory); ``regime_policy`` is the regime advice
    (``GENERIC_POLICY`` suits tools other than search); ``budget_block``: ``per_tool`` (the paper's regime per
    tool) or ``scarcest`` (one regime from the scarcest resource), None for the planner's default;
    ``turn_cap`` is turn control (a number, ``"p75"`` of ``turn_baseline``, ``"dynamic"``, or a
    :class:`TurnControl`); ``interrupt_before`` names graph nodes to pause before (LangGraph's);
    ``stop_on_exhausted`` ends the run at the first exhausted tool budget or turn of refused calls, as the BATS
    paper does (by default a run goes on while any capped tool can still be called)."""

    force_first_tool: bool = True
    regime_policy: RegimePolicy = dataclasses.field(default_factory=lambda: dict(REGIME_POLICY), repr=False)
    budget_block: BudgetBlock | None = None
    turn_cap: int | str | TurnControl | None = None
    turn_baseline: Sequence[int] | str | Path | None = None
    interrupt_before: tuple[str, ...] = ()
    stop_on_exhausted: bool = False
    read_first: bool = False
    """An agent that answers before any reading tool (``Tool(reads=True)``: ``open``, ``fetch_page``) ran,
    while one is funded, is asked once to read the most likely result first. Off by default: it costs a model
    call and a document's tokens per episode (docs/results weighs what that buys)."""
    min_reads: int = 1
    """The documents an agent is asked to read before its answer is taken, one request per document missing,
    while a reading tool is funded (2 suits multi-hop questions); more than 1 turns ``read_first`` on."""
    budget_stop: bool = False
    """The budget-aware stop: the agent estimates, with each budget block, the calls it still needs; a need
    that does not fit, or "infeasible", ends the run early with its best answer (``agents.need``)."""
    pace: bool = False
    """Where the planner shows a budget block, hold each capped tool to the block's "at most N this turn": a
    batch beyond it runs its first items, a further call waits a turn (so one call cannot spend a small cap)."""
    budget_intro: bool = False
    """Where the planner shows the budget, True: the system prompt explains it (the regime policy) and the first
    turn shows the block, as the BATS paper's tracker does. Off by default: the model meets the budget in the
    block after each tool result, so its first call reads as react's (a small model given budget words before
    the question searches for them)."""

    def __post_init__(self) -> None:
        _check_fields(self)

    @property
    def asks_to_read(self) -> bool:
        """Whether an answer given before ``min_reads`` documents were read is sent back to read first."""
        return self.read_first or self.min_reads > 1

    def common(self) -> dict[str, Any]:
        """The fields every options class has, to carry over to another planner's options."""
        return {f.name: getattr(self, f.name) for f in fields(AgentOptions)}


@dataclass(frozen=True, kw_only=True)
class BATSOptions(AgentOptions, BATSSteering):
    """BATS: ``mode`` (``early_stop`` or ``full``), ``max_attempts``, ``stop_on_exhausted`` (stop at the first
    exhausted tool budget, as the paper does), ``rule`` (``verifier`` or ``fraction``), ``context`` (``paper``
    or ``every_verify``), ``selection`` (``tier`` or ``consistency``), ``layout`` (``system`` or ``tail``);
    ``answer_key`` groups answers for the consistency selection (by their words when None)."""

    answer_key: AnswerKey | None = None

    def __post_init__(self) -> None:
        BATSSteering.__post_init__(self)  # its errors name the fields as the labels do (bats_mode, ...)
        _check_fields(self)


@dataclass(frozen=True, kw_only=True)
class SamplingOptions(AgentOptions):
    """``consistency``, ``majority`` and ``best_of``: up to ``samples`` whole episodes of ``sample_planner``
    (a single-run planner, with ``sample_options``) at ``sample_temperature``; ``answer_key`` groups answers
    for the vote (as text when None)."""

    samples: int = 5
    sample_planner: str = "react"
    sample_temperature: float = 0.7
    answer_key: AnswerKey | None = None
    sample_options: AgentOptions | None = None

    child_field: typing.ClassVar[tuple[str, str]] = ("sample_planner", "sample_options")

    def __post_init__(self) -> None:
        _check_fields(self)
        _check_whole(self, "samples")


@dataclass(frozen=True, kw_only=True)
class PlanAndBudgetOptions(AgentOptions):
    """``plan_and_budget``: ``schedule`` spreads the budget over the sub-questions (``linear``)."""

    schedule: str = "linear"


@dataclass(frozen=True, kw_only=True)
class SaleOptions(AgentOptions):
    """``sale``: the ``pool`` of bidders (``Bidder(name, model, price_per_mtok)``), fitted ``weights``, the
    auction ``memory`` (an :class:`AuctionMemory` or a SQLite path), and the planner that executes the
    winning plan (``sample_planner``, with ``sample_options``)."""

    pool: Sequence[Bidder] = ()
    weights: SaleWeights | None = None
    memory: AuctionMemory | str | Path | None = None
    sample_planner: str = "react"
    sample_options: AgentOptions | None = None

    child_field: typing.ClassVar[tuple[str, str]] = ("sample_planner", "sample_options")

    def __post_init__(self) -> None:
        _check_fields(self)
        if not self.pool:
            raise ConfigError("planner 'sale' needs pool=[Bidder(name, model, price_per_mtok), ...]")


@dataclass(frozen=True, kw_only=True)
class MCTSOptions(AgentOptions):
    """``mcts``: the episode's ``world`` (a :class:`~budgetgraph.planners.mcts.CostedWorld`, given by the
    environment), ``iterations`` per search, the ``prior`` (``model``: the model scores the actions once per
    plan; ``uniform``: no model call at all) and its uniform share ``prior_mix``."""

    world: CostedWorld | None = None
    iterations: int = 300
    prior: Literal["model", "uniform"] = "model"
    prior_mix: float = DEFAULT_PRIOR_MIX

    def __post_init__(self) -> None:
        _check_fields(self)
        _check_whole(self, "iterations")
        if not 0.0 <= self.prior_mix <= 1.0:
            raise ConfigError(f"prior_mix={self.prior_mix}: give the uniform share of the MCTS prior, 0 to 1")


LEGACY_KEYWORDS: dict[str, str] = {
    "force_first_tool": "force_first_tool",
    "regime_policy": "regime_policy",
    "budget_block": "budget_block",
    "turn_cap": "turn_cap",
    "turn_baseline": "turn_baseline",
    "interrupt_before": "interrupt_before",
    "bats_mode": "mode",
    "max_attempts": "max_attempts",
    "bats_stop_on_exhausted": "stop_on_exhausted",
    "bats_rule": "rule",
    "bats_context": "context",
    "bats_selection": "selection",
    "bats_layout": "layout",
    "schedule": "schedule",
    "samples": "samples",
    "sample_planner": "sample_planner",
    "sample_temperature": "sample_temperature",
    "answer_key": "answer_key",
    "pool": "pool",
    "sale_weights": "weights",
    "auction_memory": "memory",
}
"""``Agent``'s keyword arguments of the previous release, and the options field each now sets."""


def option_names(kind: type[AgentOptions]) -> tuple[str, ...]:
    """The fields of an options class, in order (what ``Agent(options=...)`` and a planner label can set)."""
    return tuple(f.name for f in fields(kind))


def _check_literals(options: AgentOptions) -> None:
    """Every field typed as a ``Literal`` holds one of its values (a clear error names the choices)."""
    hints = _hints(type(options))
    for f in fields(options):
        allowed = _literal_values(hints.get(f.name))
        value = getattr(options, f.name)
        if allowed and value not in allowed:
            choices = " or ".join(repr(a) for a in allowed if a is not None)
            raise ConfigError(f"{f.name} must be {choices}, not {value!r}")


def _check_fields(options: AgentOptions) -> None:
    """What every options class checks: its ``Literal`` fields and ``min_reads``."""
    _check_literals(options)
    _check_whole(options, "min_reads", " (read_first=False asks for none)")


def _check_whole(options: AgentOptions, name: str, hint: str = "") -> None:
    """The field is a whole number >= 1 (a bool is not one)."""
    n = getattr(options, name)
    if not (isinstance(n, int) and not isinstance(n, bool) and n >= 1):
        raise ConfigError(f"{name} must be a whole number >= 1, got {n!r}{hint}")


def _hints(kind: type) -> dict[str, Any]:
    from ..models.base import ChatModel
    from ..planners.mcts import CostedWorld
    from ..planners.sale import SaleWeights
    from .auction_memory import AuctionMemory

    scope = {
        "ChatModel": ChatModel,
        "SaleWeights": SaleWeights,
        "AuctionMemory": AuctionMemory,
        "CostedWorld": CostedWorld,
    }
    return typing.get_type_hints(kind, localns=scope)


def _literal_values(hint: Any) -> tuple[Any, ...]:
    """The values a ``Literal`` (or ``Literal | None``) hint allows; () for any other hint."""
    if hint is None:
        return ()
    if get_origin(hint) is Literal:
        return get_args(hint)
    args = get_args(hint) if get_origin(hint) in (typing.Union, types.UnionType) else ()
    if any(get_origin(a) is Literal for a in args):
        out: list[Any] = []
        for a in args:
            out += list(get_args(a)) if get_origin(a) is Literal else [None] if a is type(None) else []
        return tuple(out)
    return ()


def field_kind(kind: type[AgentOptions], name: str) -> type:
    """The plain type a planner label's text converts to for a field: bool, int, float or str."""
    hint = _hints(kind).get(name)
    args = set(get_args(hint)) | {hint}
    for plain in (bool, int, float):
        if plain in args:
            return plain
    return str
