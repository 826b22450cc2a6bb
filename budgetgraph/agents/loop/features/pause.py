"""Pause at exhaustion (``Agent(on_exhausted="pause")``): where a run would answer because a budget ran out, it
interrupts (LangGraph ``interrupt()``, checkpointed) with a budget request, and goes on when the app grants
more; a decline, or a grant the run's account cannot fund, goes to the answer (see ``agents.pause``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from ....budget.ledger import Ledger
from ....budget.limits import TOOL_PREFIX
from ....errors import ConfigError
from ....meter import MeteredRun
from ....models.messages import Message
from ...events import BudgetGrant
from ...pause import budget_request, read_grant
from ...result import StopReason
from ...runtime import emit
from ..hooks import Core, Hook, Jump, Node

__all__ = ["Pause"]


def _plain(value: Any) -> int | float | str:
    return value if isinstance(value, int | float) else str(value)


def account_refuses(run: MeteredRun, grant: Mapping[str, Any]) -> str:
    """Why the run's account cannot fund a grant ("" when it can, or the run has none): a grant raises the
    run's caps, never the account's, so an account with less left than granted says no."""
    account = run.ledger.account
    if account is None:
        return ""
    for key, amount in grant.items():
        left = account.available(key)
        if left is not None and amount > left:
            name = key.removeprefix(TOOL_PREFIX)
            return f"The account {account.key!r} has {left} {name} left, less than the {amount} granted."
    return ""


class Pause(Hook):
    """``block`` draws the budget block shown with a grant (None: the planner shows no budget)."""

    def __init__(self, block: Callable[[Ledger], str] | None = None) -> None:
        self.block = block

    def at_exhaustion(self, run: MeteredRun, stop: StopReason) -> Jump | None:
        return Jump("pause", stop)

    def nodes(self, core: Core) -> Mapping[str, Node]:
        block = self.block

        async def pause(state: Any, runtime: Runtime[Any]) -> dict[str, Any]:
            """Wait for more budget (nothing happens before the interrupt: the node re-runs on resume), then
            raise the granted caps and go on, or answer with what the run has."""
            run = core.run_of(state, runtime)
            info = dict(state.get("stop") or {})
            reply = interrupt(budget_request(run.ledger, info, state.get("estimates") or ()))
            said = str(info.get("message") or "The budget is exhausted.").rstrip(".") + "."
            try:
                grant = read_grant(reply, run.ledger)
            except ConfigError as exc:
                why = f"{said} The grant was not understood ({exc})."
                return core.keep(run, {"phase": "answer", "stop": {**info, "message": why}}, exhaustion=False)
            refused = account_refuses(run, grant) if grant else ""
            if not grant or refused:
                why = f"{said} {refused or 'No more budget was granted.'}"
                return core.keep(run, {"phase": "answer", "stop": {**info, "message": why}}, exhaustion=False)
            raised = []
            for key, amount in grant.items():
                new = run.ledger.grant(
                    key, amount, by="app", reason="granted when the run paused at exhaustion"
                )
                name = key.removeprefix(TOOL_PREFIX)
                emit(runtime, BudgetGrant(name, _plain(amount), _plain(new), "app", said))
                raised.append(f"{name} +{_plain(amount)}")
            shown = block(run.ledger) if block is not None and run.ledger.limits else ""
            note = Message.user(f"More budget was granted ({', '.join(raised)}). Go on with the task.")
            if shown:
                note = Message.user(f"{note.content}\n\n{shown}")
            update = {"phase": "act", "stop": None, "refused_turns": 0, "messages": [note]}
            return core.keep(run, update, exhaustion=False)

        return {"pause": pause}
