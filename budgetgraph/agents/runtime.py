"""Run-scoped objects of a graph run: how every node finds the run's metering, however the graph was invoked.

``Agent`` passes a :class:`RunContext` (LangGraph's typed runtime context). A graph invoked directly
(``graph.invoke``) or embedded as a subgraph gets none: its first node builds the run from the graph's own
budget and keeps it, for the run's later nodes, in a process registry under the ``run_id`` the state carries.
A resumed run in a new process rebuilds it from the checkpointed ledger snapshot.
"""

from __future__ import annotations

import typing
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langgraph.runtime import Runtime

from ..budget.ledger import Ledger
from ..errors import ConfigError
from ..meter import MeteredRun
from ..models.messages import Message
from .threads import ThreadLease

__all__ = ["RunContext", "emit", "forget", "resolve_run", "user_messages"]

_LIVE: OrderedDict[str, MeteredRun] = OrderedDict()
_MAX_LIVE = 4096  # runs abandoned mid-way (an interrupted graph.invoke) are dropped oldest first


@dataclass(frozen=True, slots=True)
class RunContext:
    """What ``Agent`` passes as LangGraph ``context``: the run's metering and, while ``Agent.astream`` runs,
    where its events go (its own queue, not LangGraph's stream writer, which needs Python 3.11's task
    contexts in async nodes)."""

    run: MeteredRun | None = None
    events: typing.Callable[[Any], None] | None = None
    """Where events go. Spelled ``typing.Callable``: on Python 3.10 LangGraph's scan of the context's types
    takes ``collections.abc.Callable[...]`` for a class and fails (``issubclass() arg 1 must be a class``)."""
    lease: ThreadLease | None = None
    """The request's hold on its thread (a checkpointed run on a named thread): checked before every step."""


def resolve_run(state: Any, runtime: Runtime[Any] | None, make: Any) -> MeteredRun:
    """The run's metering: from the context, else the registry (by ``state["run_id"]``), else a new one from
    the state's ledger snapshot or, with none, from ``make(ledger=None)`` (the graph's own budget)."""
    ctx = getattr(runtime, "context", None) if runtime is not None else None
    if isinstance(ctx, RunContext):
        if ctx.lease is not None:  # every node starts here: a request that lost its thread goes no further
            ctx.lease.check()
        if ctx.run is not None:
            return ctx.run
    run_id = state.get("run_id") if isinstance(state, dict) else None
    if run_id and (live := _LIVE.get(run_id)) is not None:
        return live
    snapshot = state.get("ledger") if isinstance(state, dict) else None
    run: MeteredRun = make(Ledger.from_snapshot(snapshot) if snapshot else None)
    if run_id:
        run.id = run_id
    _LIVE[run.id] = run
    while len(_LIVE) > _MAX_LIVE:
        _LIVE.popitem(last=False)
    return run


def forget(run: MeteredRun) -> None:
    """The run ended: drop it from the registry."""
    _LIVE.pop(run.id, None)


def sink(runtime: Runtime[Any] | None) -> typing.Callable[[Any], None] | None:
    """Where this run's events go, or None when nobody streams it."""
    ctx = getattr(runtime, "context", None) if runtime is not None else None
    return ctx.events if isinstance(ctx, RunContext) else None


def streaming(runtime: Runtime[Any] | None) -> bool:
    return sink(runtime) is not None


def emit(runtime: Runtime[Any] | None, event: Any) -> None:
    """Send a typed event to ``Agent.astream``; a no-op when nobody streams."""
    if (to := sink(runtime)) is not None:
        to(event)


def user_messages(state: Any) -> list[Message]:
    """The state's messages, which must be budgetgraph :class:`Message` objects (a clear error otherwise)."""
    messages: Sequence[Any] = state.get("messages", []) if isinstance(state, dict) else []
    for m in messages:
        if not isinstance(m, Message):
            kind = f"{type(m).__module__}.{type(m).__name__}"
            raise ConfigError(
                f"the agent graph got a message of type {kind}: its state holds budgetgraph Message objects "
                "(budgetgraph.Message.user(...)). Embed agent.graph in a parent whose 'messages' key holds "
                "those (budgetgraph.agents.AgentState), or call 'await agent.arun(question)' inside a node "
                "of your own graph (LangGraph MessagesState holds LangChain messages)"
            )
    return list(messages)
