"""A run as it goes, for ``Agent.astream``: the graph's updates turned into typed events, with the events the
nodes send themselves (text deltas, tool calls started and finished) in between; and the run's trace span."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig

from .. import tracing
from ..meter import MeteredRun
from .events import AgentEvent, ApprovalRequest, BudgetRequest, FinalAnswer, events_of
from .result import RunResult
from .runs import Runs
from .runtime import RunContext
from .threads import ThreadLease

__all__ = ["events", "run_span", "traced"]


async def events(
    runs: Runs,
    state: Any,
    config: RunnableConfig,
    run: MeteredRun,
    final: dict[str, Any],
    lease: ThreadLease | None,
) -> AsyncIterator[AgentEvent]:
    """The run's events, its result last (an approval or budget request first, when it paused)."""
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    context = RunContext(run=run, events=lambda event: queue.put_nowait(("event", event)), lease=lease)

    async def pump() -> None:
        try:
            async for chunk in runs.graph.astream(
                state, config, context=context, stream_mode="updates", **runs.kwargs()
            ):
                queue.put_nowait(("updates", chunk))
        except BaseException as exc:  # delivered to the consumer, raised there
            queue.put_nowait(("error", exc))
        finally:
            queue.put_nowait(("end", None))

    task = asyncio.create_task(pump())
    calls: dict[str, Any] = {}
    try:
        while True:
            kind, item = await queue.get()
            if kind == "end":
                break
            if kind == "error":
                raise item
            if kind == "event":
                yield item
                continue
            for event in events_of(item, final, calls, run.ledger):
                yield event
    finally:
        if not task.done():  # the consumer stopped early: the run ends before the thread is given back
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    result = await runs.structured(runs.result(final, run.ledger, config), run)
    if result.pending:
        yield ApprovalRequest(thread_id=result.thread_id or "", calls=tuple(result.pending))
    if result.budget_request is not None:
        yield BudgetRequest(thread_id=result.thread_id or "", request=dict(result.budget_request))
    yield FinalAnswer(result=result)


@contextmanager
def run_span(runs: Runs, config: RunnableConfig, model: str) -> Iterator[Any]:
    """The run's ``invoke_agent`` span (GenAI conventions), whichever way it is run."""
    attrs = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": f"budgetgraph.{runs.planner}",
        "gen_ai.request.model": model,
        "budgetgraph.thread_id": (config.get("configurable") or {}).get("thread_id"),
    }
    with tracing.span(f"invoke_agent {runs.planner}", attrs) as current:
        yield current


def traced(current: Any, result: RunResult, runs: Runs, run: MeteredRun) -> RunResult:
    """The finished run on its span: usage, dollars, the stop (as ``gen_ai.response.finish_reasons`` too) and
    every budget figure; and the run metrics."""
    usage = result.usage
    tracing.set_attributes(
        current,
        {
            "gen_ai.usage.input_tokens": usage.input_tokens,
            "gen_ai.usage.output_tokens": usage.output_tokens,
            "gen_ai.response.finish_reasons": [result.stop_reason.kind],
            "budgetgraph.usd": float(usage.usd),
            "budgetgraph.tool_calls": usage.total_tool_calls,
            "budgetgraph.stop_reason": str(result.stop_reason),
            "budgetgraph.stop.kind": result.stop_reason.kind,
            "budgetgraph.stop.resource": result.stop_reason.resource or None,
            **tracing.budget_attributes(run.ledger),
        },
    )
    tracing.record_run(run.ledger, result.stop_reason.kind, f"budgetgraph.{runs.planner}")
    return result
