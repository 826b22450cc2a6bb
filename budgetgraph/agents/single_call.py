"""The ``single_call`` planner: one metered model call with the tools offered; the calls it makes are the
answer, recorded and charged as made, never run (function-calling benchmarks such as BFCL score them)."""

from __future__ import annotations

import json
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from ..errors import BudgetExceeded, ModelError, Overrun
from ..models.messages import Message, ModelSettings
from .loop.settings import LoopSettings
from .prompts import extract_answer
from .registry import PlannerContext
from .result import stop_info
from .runtime import RunContext, forget, resolve_run, user_messages
from .state import AgentState

__all__ = ["SINGLE_CALL_PROMPT", "recorded_calls", "single_call_graph"]

SINGLE_CALL_PROMPT = (
    "Make the function call(s) that answer the request, with argument values taken from it. If none of the "
    "functions fits the request, do not call any; say so briefly instead."
)


def recorded_calls(answer: str | None) -> list[dict[str, Any]] | None:
    """The calls a ``single_call`` answer holds (``[{name: arguments}, ...]``), or None when it holds text."""
    if not answer:
        return None
    try:
        parsed = json.loads(answer)
    except json.JSONDecodeError:
        return None
    if not isinstance(parsed, list) or not all(isinstance(c, dict) and len(c) == 1 for c in parsed):
        return None
    return parsed


def single_call_graph(ctx: PlannerContext) -> StateGraph[AgentState, RunContext]:
    """One node: the call, then each tool call it made charged in order (those past a cap are refused and
    left out of the answer); the answer is the kept calls as JSON, or the reply's text when it made none."""
    cfg: LoopSettings = ctx.settings
    system = Message.system(
        "\n\n".join(p for p in (ctx.system_prompt or SINGLE_CALL_PROMPT, ctx.instructions) if p)
    )
    schemas = [t.schema for t in cfg.tools.values()]

    async def call(state: AgentState, runtime: Runtime[Any]) -> dict[str, Any]:
        run = resolve_run(state, runtime, cfg.new_run)
        history = user_messages(state)
        settings = ModelSettings(**cfg.settings)
        settings["tool_choice"] = "auto"
        update: dict[str, Any] = {"phase": "done", "run_id": run.id}
        try:
            response = await run.models.call(
                [system, *history], schemas, settings, role="act", max_tokens=cfg.max_tokens
            )
        except (BudgetExceeded, Overrun, ModelError) as exc:
            kind = "overrun" if isinstance(exc, Overrun) else "error" if isinstance(exc, ModelError) else None
            info = stop_info(kind or "budget_exhausted", getattr(exc, "resource", "model"), str(exc))
            forget(run)
            return {**update, "answer": None, "stop": info, "ledger": run.ledger.snapshot()}
        kept: list[dict[str, Any]] = []
        refused = ""
        for made in response.message.tool_calls:
            if made.error:
                continue
            held = run.tools.record(made)
            if held is not None:
                refused = refused or held.resource
                continue
            kept.append({made.name: dict(made.arguments)})
        text = response.message.content
        answer = json.dumps(kept, ensure_ascii=False) if kept else extract_answer(text) if text else None
        info = (
            stop_info("budget_exhausted", refused, "a call did not fit the budget")
            if refused
            else stop_info("answered")
        )
        forget(run)
        return {
            **update,
            "messages": [response.message],
            "answer": answer,
            "stop": info,
            "details": {"calls": kept},
            "ledger": run.ledger.snapshot(),
        }

    graph: StateGraph[AgentState, RunContext] = StateGraph(AgentState, context_schema=RunContext)
    graph.add_node("call", call)
    graph.add_edge(START, "call")
    graph.add_edge("call", END)
    return graph
