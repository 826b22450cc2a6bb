"""The planner registry: one entry per planner (name, summary, options class, builder, traits). Everything
that needs to know about planners (the facade, prompt assembly, the runner's resume check, the environments,
the ``eval --planner`` label grammar, CLI help) asks here. A planner from outside the package registers with
:func:`register_planner` (or the ``budgetgraph.planners`` entry point group)."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Literal, TypeVar

from langgraph.graph import StateGraph

from ..budget.limits import check_name, closest
from ..errors import ConfigError
from ..models.base import ChatModel
from ..tools.base import Tool
from .loop.build import loop_graph
from .loop.compose import option_hooks
from .loop.hooks import Hook
from .loop.settings import LoopSettings
from .options import LEGACY_KEYWORDS, AgentOptions, option_names
from .prompts import AnswerStyle
from .result import Spawn
from .turns import TurnControl

__all__ = [
    "ENTRY_POINT_GROUP",
    "PLANNERS",
    "TASK_KINDS",
    "PlannerContext",
    "PlannerSpec",
    "get_planner",
    "make_options",
    "planner_names",
    "register_planner",
]

ENTRY_POINT_GROUP = "budgetgraph.planners"
TASK_KINDS = ("research", "code", "planning", "single_call")
"""The kinds of task an environment poses: questions over documents, code to write, costed plans, one call."""


@dataclass(frozen=True, slots=True)
class PlannerContext:
    """What a planner's builder gets: the core loop's ``settings``, its own options (of its options class), the
    agent's model, tools, prompts and answer style, ``spawn`` to build sub-runs like the agent, and
    :meth:`loop` to build the loop from hooks (the options' behaviours, the agent's approval and pause, and
    the planner's own)."""

    name: str
    settings: LoopSettings
    options: AgentOptions
    model: ChatModel
    tools: Sequence[Tool]
    spawn: Spawn
    instructions: str | None = None
    system_prompt: str | None = None
    """The user's replacement for the built-in prompt (None: the built-in one)."""
    answer_style: AnswerStyle = "full"
    shows_budget: bool = False
    """The planner shows the model its budget (its registry entry's trait): the block is one of its hooks."""
    block: Literal["scarcest", "per_tool"] = "scarcest"
    turn_control: TurnControl | None = None
    approve: frozenset[str] = frozenset()
    pause: bool = False
    """``Agent(on_exhausted="pause")``: the run pauses for a grant where a budget runs out."""

    def hooks(self, *planner: Hook, first_block: bool = True) -> list[Hook]:
        """The run's hooks: the options' behaviours, ``planner``'s own, the agent's approval and pause."""
        return option_hooks(
            self.options,
            self.tools,
            shows_budget=self.shows_budget,
            block=self.block,
            turn_control=self.turn_control,
            approve=self.approve,
            pause=self.pause,
            planner=planner,
            first_block=first_block,
            answer_style=self.answer_style,
        )

    def loop(self, *hooks: Hook) -> StateGraph[Any, Any]:
        """The react-style loop with the agent's hooks and ``hooks`` (a planner's own behaviour)."""
        return loop_graph(self.settings, self.hooks(*hooks))


Build = Callable[[PlannerContext], "StateGraph[Any, Any]"]


@dataclass(frozen=True, slots=True)
class PlannerSpec:
    """A planner: ``build`` makes its LangGraph graph from a :class:`PlannerContext` (None: it does not run
    from ``Agent``, and ``where`` says where it does). Traits: ``shows_budget`` (the model sees the regime policy
    and a ``<budget>`` block), ``runs_sub_agents`` (it delegates to sub-runs on child ledgers), ``takes_history``
    (a message history, not only a question), ``budget_block`` (its default block), ``prompt_modules`` (modules
    whose prompt texts its episodes depend on, beyond the loop's), ``kinds`` (the kinds of task it runs)."""

    name: str
    summary: str
    build: Build | None
    options: type[AgentOptions] = AgentOptions
    shows_budget: bool = False
    runs_sub_agents: bool = False
    takes_history: bool = False
    budget_block: Literal["scarcest", "per_tool"] = "scarcest"
    prompt_modules: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ("research", "code", "planning")
    where: str = ""
    builtin: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        check_name(self.name, "planner")
        if not (isinstance(self.options, type) and issubclass(self.options, AgentOptions)):
            raise ConfigError(f"planner {self.name!r}: options must be an AgentOptions subclass")
        if unknown := sorted(set(self.kinds) - set(TASK_KINDS)):
            raise ConfigError(f"planner {self.name!r}: unknown task kinds {unknown}; known: {TASK_KINDS}")


_REGISTRY: dict[str, PlannerSpec] = {}
_LOCK = threading.Lock()
_loaded = False

F = TypeVar("F", bound=Callable[..., Any])


def register_planner(
    spec: PlannerSpec | None = None,
    /,
    *,
    name: str | None = None,
    summary: str = "",
    options: type[AgentOptions] = AgentOptions,
    replace: bool = False,
    **traits: Any,
) -> Any:
    """Register a planner: ``register_planner(PlannerSpec(...))``, or as a decorator on its builder:
    ``@register_planner(name="greedy", summary="...", shows_budget=True)``. A name already taken is refused
    unless ``replace=True``."""
    if spec is not None:
        _add(spec, replace)
        return spec

    def decorate(build: F) -> F:
        if name is None:
            raise ConfigError("register_planner as a decorator needs name=")
        _add(
            PlannerSpec(
                name, summary or (build.__doc__ or "").strip().split("\n")[0], build, options, **traits
            ),
            replace,
        )
        return build

    return decorate


def _add(spec: PlannerSpec, replace: bool) -> None:
    with _LOCK:
        old = _REGISTRY.get(spec.name)
        if old is not None and old != spec and not replace:
            raise ConfigError(f"a planner named {spec.name!r} is already registered: pick another name")
        _REGISTRY[spec.name] = spec


def _load_entry_points() -> None:
    """Planners that installed packages declare under the ``budgetgraph.planners`` entry point group: each
    names a :class:`PlannerSpec`, or a module that registers its planners when imported."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = point.load()
        except Exception as exc:  # a broken plugin must not break the other planners: said, and skipped
            warnings.warn(
                f"the planner plugin {point.name!r} ({point.value}) failed to load and is skipped: {exc}",
                stacklevel=2,
            )
            continue
        if isinstance(loaded, PlannerSpec):
            _add(loaded, replace=False)


def get_planner(name: str) -> PlannerSpec:
    """The registered planner ``name``; an unknown name is an error with the closest one and the list."""
    _load_entry_points()
    spec = _REGISTRY.get(name)
    if spec is None:
        names = list(_REGISTRY)
        raise ConfigError(
            f"unknown planner {name!r}{closest(name, names)}; available: {', '.join(names)}. A planner of your own "
            f"is found once its module is imported (register_planner), or through the {ENTRY_POINT_GROUP!r} "
            "entry point group of an installed package"
        )
    return spec


def planner_names() -> tuple[str, ...]:
    _load_entry_points()
    return tuple(_REGISTRY)


class _Planners(Mapping[str, PlannerSpec]):
    """A live, read-only view of the registry (``budgetgraph.agents.PLANNERS``)."""

    def __getitem__(self, name: str) -> PlannerSpec:
        _load_entry_points()
        return _REGISTRY[name]

    def __iter__(self) -> Iterator[str]:
        return iter(planner_names())

    def __len__(self) -> int:
        return len(planner_names())

    def __repr__(self) -> str:
        return f"PLANNERS({', '.join(planner_names())})"


PLANNERS: Mapping[str, PlannerSpec] = _Planners()


def make_options(
    spec: PlannerSpec,
    given: AgentOptions | None = None,
    fields: Mapping[str, Any] | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
    what: str = "option",
) -> AgentOptions:
    """The options ``spec``'s planner runs with: ``given`` (its class, or a plainer class whose fields carry
    over), then ``fields`` set on it (a field the planner does not take is an error, except one that belongs
    to the planner's sub-runs, which goes to their options), over ``defaults`` (set only where the class has
    the field)."""
    kind = spec.options
    if given is not None and not isinstance(given, AgentOptions):
        raise ConfigError(f"options must be an AgentOptions (e.g. {kind.__name__}(...)), not {given!r}")
    names = option_names(kind)
    values: dict[str, Any] = {k: v for k, v in (defaults or {}).items() if k in names}
    if given is not None:
        if not issubclass(kind, type(given)):
            raise ConfigError(
                f"planner {spec.name!r} takes {kind.__name__}, not {type(given).__name__}: "
                f"e.g. options={kind.__name__}(...)"
            )
        values.update({n: getattr(given, n) for n in option_names(type(given)) if n in names})
    child: dict[str, Any] = {}
    for key, value in (fields or {}).items():
        target = LEGACY_KEYWORDS.get(key, key)
        if target in names:
            values[target] = value
        else:
            child[key] = value
    if child:
        values.update(_child_options(spec, kind, values, child, what))
    return kind(**values)


def _child_options(
    spec: PlannerSpec, kind: type[AgentOptions], values: dict[str, Any], child: dict[str, Any], what: str
) -> dict[str, Any]:
    """Options a delegating planner passes on to its sub-runs' planner (e.g. BATS options for bats samples)."""
    link = getattr(kind, "child_field", None)
    sub = get_planner(values.get(link[0], "react")) if link else None
    if link is None or sub is None:
        key = next(iter(child))
        raise ConfigError(
            f"{key!r} is not an {what} of planner {spec.name!r} ({kind.__name__}); it takes: "
            f"{', '.join(option_names(kind))}"
        )
    base = values.get(link[1])
    return {link[1]: make_options(sub, base, child, what=what)}
