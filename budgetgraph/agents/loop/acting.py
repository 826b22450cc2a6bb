"""The core's metered model call for acting: the final-answer reserve held back, the output bounded, a reply's
text streamed without the agent's markup, and why a call that could not be made ends the acting."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from langgraph.runtime import Runtime

from ... import tracing
from ...errors import BudgetExceeded, ModelError, Overrun
from ...meter import MIN_OUTPUT, MeteredRun
from ...models.messages import Message, ModelResponse, ModelSettings
from ..events import BudgetOverrun, TextDelta
from ..markup import MarkupStripper
from ..result import StopReason
from ..runtime import emit, sink
from .settings import LoopSettings

__all__ = ["act", "report", "stop_on", "text_sink"]


def stop_on(exc: Exception) -> StopReason:
    """Why a model call that raised ends the acting: an overrun, a budget, a full context or an error."""
    if isinstance(exc, Overrun):
        return StopReason("overrun", exc.resource, str(exc))
    if isinstance(exc, BudgetExceeded):
        if exc.resource == "context_window":
            return StopReason("context_full", "", "The prompt fills the model's context window.")
        return StopReason("budget_exhausted", exc.resource, str(exc))
    return StopReason("error", "model", f"{type(exc).__name__}: {exc}")


def report(settings: LoopSettings, runtime: Runtime[Any] | None, exc: Exception) -> None:
    """An overrun is an event too (the stop reason and the trace carry it as well)."""
    if isinstance(exc, Overrun):
        source = exc.source or getattr(settings.model, "name", "")
        emit(runtime, BudgetOverrun(exc.resource, str(exc.reserved), str(exc.reported), source))
        tracing.event("budgetgraph.overrun", {"resource": exc.resource, "reported": str(exc.reported)})


def text_sink(runtime: Runtime[Any] | None, node: str) -> MarkupStripper | None:
    """Where a streamed reply's text goes: :class:`TextDelta` events, without the agent's markup."""
    to = sink(runtime)
    return None if to is None else MarkupStripper(lambda text: to(TextDelta(text, node)))


async def act(
    settings: LoopSettings,
    run: MeteredRun,
    runtime: Runtime[Any] | None,
    node: str,
    messages: list[Message],
    schemas: list[Any],
    *,
    force: bool,
    role: str = "act",
) -> ModelResponse | StopReason:
    """One acting model call with the answer reserve held back; why it could not run or failed."""
    models = run.models
    n_in = models.count(messages, schemas)
    if models.out_room(n_in, settings.max_tokens) < MIN_OUTPUT:
        why = f"The prompt ({n_in} tokens) fills the model's context window ({models.window})."
        return StopReason("context_full", "", why)
    hold = settings.hold_output if settings.hold_output is not None else settings.answer_max_tokens
    chosen = ModelSettings(**settings.settings)
    if force and schemas:
        chosen["tool_choice"] = "required"
    on_text = text_sink(runtime, node)
    try:
        models.set_hold(n_in, hold, calls=settings.hold_calls, input_reserve=settings.answer_input_reserve)
        response = await models.call(
            messages,
            schemas,
            chosen,
            role=role,
            max_tokens=settings.max_tokens,
            node=node,
            on_text=on_text,
            n_in=n_in,
        )
        if on_text is not None:
            on_text.flush()
    except (BudgetExceeded, Overrun, ModelError) as exc:
        report(settings, runtime, exc)
        return stop_on(exc)
    calls = response.message.tool_calls
    if settings.settings.get("parallel_tool_calls") is False and len(calls) > 1:
        # the backend ignored the setting (text-parsed calls): the first call is the reply, as the API gives
        return replace(response, message=Message.assistant(response.message.content, calls[:1]))
    return response
