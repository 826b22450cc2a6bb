"""The core's tool steps in pieces: admitting a batch in order, the messages the model reads back, and a call
that was in flight when the run stopped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import BudgetExceeded
from ...meter import Admitted, Answered, MeteredRun, refusal_text
from ...models.messages import Message, ToolCall
from .hooks import Batch

__all__ = ["admit", "lost_call", "note_of", "tool_messages"]


def admit(run: MeteredRun, batch: Batch) -> tuple[list[Answered | None], list[Admitted], list[str]]:
    """Admit the calls in order: the answers of those not run, the admitted ones, the resources refused. A call
    a hook held back (``batch.skip``) is answered with its text; ``batch.most`` limits a tool's units this
    turn, shared by its calls in order."""
    texts: list[Answered | None] = [None] * len(batch.calls)
    admitted: list[Admitted] = []
    refused: list[str] = []
    most = dict(batch.most)
    for i, call in enumerate(batch.calls):
        if call.id in batch.skip:
            texts[i] = Answered(batch.skip[call.id], "refused")
            continue
        got = run.tools.admit(call, most.get(call.name))
        if isinstance(got, Answered):
            texts[i] = got
        elif isinstance(got, BudgetExceeded):
            texts[i] = Answered(refusal_text(got) + " This call was not run.", "refused")
            refused.append(got.resource)
        else:
            admitted.append(got)
            run.pending[call.id] = got
            if call.name in most:
                most[call.name] -= got.units
    return texts, admitted, refused


def tool_messages(calls: Sequence[ToolCall], texts: Sequence[Answered | None]) -> list[Message]:
    """One tool message per call, in the calls' order."""
    return [
        Message.tool(t.text if t else "", c.id, c.name, t.status if t else "error")
        for c, t in zip(calls, texts, strict=True)
    ]


async def lost_call(run: MeteredRun, call: ToolCall) -> Answered:
    """A call that was in flight when the run stopped: run again (through the meter, under the run's deadline)
    only if its tool is idempotent; else it counts as spent and the model is told."""
    tool = run.tools.tools.get(call.name)
    if tool is None or not tool.idempotent:
        return Answered(
            "This call was in flight when the run stopped: it may have run. It counts as spent and was not run "
            "again (its tool is not declared idempotent).",
            "error",
        )
    return await run.tools.rerun(call)


def note_of(saved: Any) -> Answered | None:
    """A checkpointed answer of a call that was not run (a checkpoint of an earlier release holds its text)."""
    if saved is None:
        return None
    if isinstance(saved, str):
        return Answered(saved, "error")
    return Answered(str(saved.get("text", "")), saved.get("status") or "error")


GIVE_UP_AFTER = 2
"""Turns in a row whose every tool call was refused after which the model answers (it is not using what is
left); after the first it is told why and goes on."""


def refused_turns(before: int, all_refused: bool) -> int:
    """Turns in a row whose every call was refused, counting this one."""
    return before + 1 if all_refused else 0
