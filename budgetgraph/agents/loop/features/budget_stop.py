"""The budget-aware stop (``AgentOptions.budget_stop``, ``agents.need``): the agent's estimate of what it still
needs, with each budget block; one that does not fit what is left, or "infeasible", ends the search early with
its best answer (stop kind ``stopped_early``). A reply that is only an estimate of calls that fit goes on once
with a forced call (``GO_ON_LIMIT``): an estimate that always fits cannot spend the whole budget."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import replace
from typing import Annotated, Any, ClassVar

from ....models.messages import Message
from ...need import asks_for_more, judge_need, parse_need
from ..hooks import Hook, Jump, Reply, Turn

__all__ = ["GO_ON", "GO_ON_LIMIT", "BudgetStop", "GoOn", "may_go_on"]

GO_ON = "Go on: make the next call your estimate counts."
"""Sent after a reply that was only an estimate of calls still needed; that turn must call a tool."""
GO_ON_LIMIT = 1
"""Need-only replies a run answers with :data:`GO_ON`; a later one goes to the answer."""


def may_go_on(messages: Sequence[Message]) -> bool:
    """Whether a need-only reply may still go on: fewer than :data:`GO_ON_LIMIT` went on in ``messages``."""
    return sum(m.role == "user" and m.content == GO_ON for m in messages) < GO_ON_LIMIT


class BudgetStop(Hook):
    """Judges each reply's estimate against what remains; records every estimate."""

    state: ClassVar[dict[str, Any]] = {"estimates": Annotated[list[dict[str, Any]], operator.add]}

    async def after_model(self, turn: Turn, reply: Reply) -> Jump | None:
        tools = turn.run.tools.tools
        estimate = parse_need(reply.message.content, list(tools))
        if estimate is None:
            return None
        record, why = judge_need(
            estimate, turn.run.ledger, {n: t.budget_key for n, t in tools.items()}, turn.turns
        )
        turn.set("estimates", [record])
        if why is None:
            return None
        reply.message = replace(reply.message, tool_calls=())  # the agent's own estimate ends the search
        return Jump.to_answer("stopped_early", why)


class GoOn(Hook):
    """A reply that is only an estimate of calls still needed, and they fit: the next turn makes one."""

    state: ClassVar[dict[str, Any]] = {"go_on": bool}

    async def before_model(self, turn: Turn) -> Jump | None:
        if turn.state.get("go_on") and turn.history and turn.history[-1].role == "user":
            turn.force = True
        return None

    async def after_model(self, turn: Turn, reply: Reply) -> Jump | None:
        if reply.calls:
            turn.set("go_on", False)
            return None
        need = parse_need(reply.message.content, list(turn.run.tools.tools))
        wants = need is not None and asks_for_more(need)
        if wants and not reply.answer and turn.run.tools.available() and may_go_on(turn.history):
            turn.keep(Message.user(GO_ON))
            turn.set("go_on", True)
            return Jump.to_model()
        return None
