"""The core's final answer: one call on the held reserve, its messages fitted to what is left (old tool results
blanked until it fits the budget and the window); the best answer so far when it cannot be paid for."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langgraph.runtime import Runtime

from ...errors import BudgetExceeded, ModelError, Overrun
from ...meter import MIN_OUTPUT, MeteredRun
from ...models.messages import Message, ModelSettings
from ..prompts import extract_answer
from ..result import StopReason
from ..runtime import user_messages
from .acting import report, stop_on, text_sink
from .settings import LoopSettings

__all__ = ["final_answer", "fit_answer", "last_text"]


def last_text(history: Sequence[Message]) -> str | None:
    """The answer in the latest assistant message with text (a run's fallback answer)."""
    for m in reversed(history):
        if m.role == "assistant" and m.content.strip():
            return extract_answer(m.content)
    return None


async def final_answer(
    settings: LoopSettings,
    system: Message,
    run: MeteredRun,
    state: Mapping[str, Any],
    runtime: Runtime[Any] | None,
) -> dict[str, Any]:
    """The update of the answer step: the answer call's messages, its answer and the run's stop."""
    info = state.get("stop") or StopReason("answered").info()
    reason = str(info.get("message") or "The budget is exhausted.")
    history = user_messages(state)
    nudge = Message.user(settings.answer_nudge.format(reason=reason.rstrip(".") + "."))
    fallback = {"phase": "done", "stop": info, "answer": state.get("answer") or last_text(history)}
    messages = fit_answer(settings, system, run, history, nudge)
    if messages is None:
        return fallback
    chosen = ModelSettings(**settings.settings)
    chosen["tool_choice"] = "none"
    if settings.answer_schema is not None:
        chosen["json_schema"] = settings.answer_schema
    on_text = text_sink(runtime, "answer")
    try:
        response = await run.models.call(
            messages,
            [],
            chosen,
            role="answer",
            max_tokens=settings.answer_max_tokens,
            use_hold=True,
            node="answer",
            on_text=on_text,
        )
        if on_text is not None:
            on_text.flush()
    except BudgetExceeded as exc:
        return {**fallback, "stop": stop_on(exc).info() if exc.resource == "seconds" else info}
    except (Overrun, ModelError) as exc:
        report(settings, runtime, exc)
        return {**fallback, "stop": stop_on(exc).info()}
    text = response.message.content
    answer = extract_answer(text) if text else fallback["answer"]
    return {"messages": [nudge, Message.assistant(text)], "phase": "done", "answer": answer, "stop": info}


def fit_answer(
    settings: LoopSettings, system: Message, run: MeteredRun, history: list[Message], nudge: Message
) -> list[Message] | None:
    """The answer call's messages, old tool results blanked until it fits budget and window; None if never."""
    history = list(history)
    for _ in range(len(history) + 1):
        messages = [system, *history, nudge]
        n_in = run.models.count(messages, [])
        if run.models.out_room(n_in, settings.answer_max_tokens) >= MIN_OUTPUT:
            planned = run.models.plan(n_in, settings.answer_max_tokens, use_hold=True)
            if not isinstance(planned, BudgetExceeded):
                return messages
        if not _shrink(history):
            return None
    return None


def _shrink(history: list[Message]) -> bool:
    """Blank the oldest tool result still holding text, so the answer call fits; False when none is left."""
    for i, m in enumerate(history):
        if m.role == "tool" and not m.content.startswith("[removed"):
            history[i] = Message.tool("[removed to fit the budget]", m.tool_call_id or "", m.name)
            return True
    return False
