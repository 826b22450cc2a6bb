"""The loop's graph: the core's steps and whatever nodes hooks and planners add, routed by each step's phase."""

from __future__ import annotations

import sys
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import var_child_runnable_config
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command

from ...errors import ConfigError, Overrun
from ..runtime import RunContext
from ..state import AgentState
from .core import LoopCore, stop_on
from .hooks import Hook, Node
from .settings import LoopSettings

__all__ = ["build_loop", "loop_graph", "routed"]


def routed(node: Node, routes: Mapping[str, str], core: LoopCore) -> Any:
    """The node's update plus where to go next (by its ``phase``), as one ``Command``; an overrun raised
    anywhere in the node ends the run with stop reason ``overrun`` (loud, with the answer so far)."""

    async def run(state: Any, runtime: Runtime[Any], config: RunnableConfig) -> Command[str]:
        # Python 3.10: asyncio tasks do not carry LangGraph's run config, which interrupt() reads
        token = var_child_runnable_config.set(config) if sys.version_info < (3, 11) else None
        try:
            update = await node(state, runtime)
        except Overrun as exc:
            core.report(runtime, exc)
            metered = core.run_of(state, runtime)
            answer = state.get("answer") if isinstance(state, dict) else None
            update = core.keep(metered, {"phase": "done", "stop": stop_on(exc).info(), "answer": answer})
        finally:
            if token is not None:
                var_child_runnable_config.reset(token)
        return Command(update=update, goto=routes.get(update.get("phase", "done"), END))

    run.__name__ = getattr(node, "__name__", "node")
    return run


def _schema(core: LoopCore, state: Mapping[str, Any] | None) -> type:
    """The graph's state: the core's keys, each hook's own keys and the planner's (a key declared twice with
    two types is an error)."""
    keys: dict[str, Any] = dict(typing.get_type_hints(AgentState, include_extras=True))
    owners = {k: "the core" for k in keys}
    for name, annotation in [
        *((k, v) for h in core.hooks for k, v in h.state.items()),
        *(state or {}).items(),
    ]:
        if name in keys and keys[name] != annotation:
            raise ConfigError(f"state key {name!r} is declared twice ({owners[name]} has it)")
        keys[name] = annotation
        owners.setdefault(name, "a hook")
    return typing.TypedDict("LoopState", keys, total=False)  # type: ignore[operator,no-any-return]


def build_loop(
    core: LoopCore,
    *,
    nodes: Mapping[str, Node] | None = None,
    entry: str = "model",
    model: str = "model",
    answer: str = "answer",
    state: Mapping[str, Any] | None = None,
) -> StateGraph[Any, RunContext]:
    """The uncompiled graph of ``core`` (compile it with your own checkpointer, or embed it as a subgraph).
    ``nodes`` are a planner's own steps (a jump or a phase names them); ``model`` and ``answer`` name the
    core's acting step and where an answer is made (a planner's own answer step replaces the core's, e.g.
    BATS's selection); ``state`` declares the planner's state keys."""
    extra = dict(nodes or {})
    for hook in core.hooks:
        extra.update(hook.nodes(core))
    routes = {"act": model, "tools": "tools", "answer": answer, **{n: n for n in extra}}
    if core.settings.durable:
        routes["run_tools"] = "run_tools"
    graph: StateGraph[Any, RunContext] = StateGraph(_schema(core, state), context_schema=RunContext)
    steps: dict[str, Node] = {model: core.model_node, "tools": core.tools_node, **extra}
    if (
        core.settings.durable
    ):  # what is in flight is checkpointed before it runs (at most once across a crash)
        steps["run_tools"] = core.run_tools_node
    targets = (*dict.fromkeys(routes.values()), END)
    for name, node in steps.items():
        if name == answer:
            graph.add_node(name, node)  # type: ignore[call-overload]
            graph.add_edge(name, END)
        else:
            graph.add_node(name, routed(node, routes, core), destinations=targets)
    if answer not in steps:
        graph.add_node(answer, core.answer_node)
        graph.add_edge(answer, END)
    graph.add_edge(START, entry)
    return graph


def loop_graph(settings: LoopSettings, hooks: Sequence[Hook] = ()) -> StateGraph[Any, RunContext]:
    """The react-style loop of ``settings`` steered by ``hooks``: what a planner that composes hooks builds."""
    return build_loop(LoopCore(settings, hooks))
