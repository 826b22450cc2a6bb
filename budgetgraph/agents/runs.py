"""How the facade starts, resumes and reads out a run of its compiled graph: the run's ledger (fresh, the
thread's, or a parent's child) and account, the graph's input, and the result."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command
from pydantic import BaseModel

from ..budget.ledger import Ledger
from ..budget.limits import Budget
from ..budget.shared import default_account
from ..budget.store import Account
from ..errors import BudgetExhausted, ConfigError
from ..meter import MeteredRun
from ..models.langchain_messages import conversation
from ..models.messages import Message, ToolCall
from .loop.settings import LoopSettings
from .pause import DECLINE, plain, read_grant, request_of
from .result import Question, RunResult, StopReason
from .state import AgentState
from .structured import parse_output, repair_output

__all__ = ["Runs", "checkpoint_of"]


def checkpoint_of(snapshot: Any) -> str | None:
    """The id of the checkpoint a state snapshot was read from (None: the thread has none)."""
    configurable = (getattr(snapshot, "config", None) or {}).get("configurable") or {}
    found = configurable.get("checkpoint_id")
    return str(found) if found else None


def _details(final: Mapping[str, Any]) -> dict[str, Any]:
    """What the planner reports about its run, with the budget-aware stop's estimates when it made any."""
    details = dict(final.get("details") or {})
    if final.get("estimates"):
        details["estimates"] = list(final["estimates"])
    return details


def _pending(interrupts: Any) -> tuple[ToolCall, ...]:
    """The tool calls an approval interrupt is waiting on."""
    calls: list[ToolCall] = []
    for item in interrupts or ():
        value = getattr(item, "value", None)
        if isinstance(value, dict):
            calls += [ToolCall(c["id"], c["name"], dict(c["arguments"])) for c in value.get("pending", [])]
    return tuple(calls)


def _resumed_account(thread_id: str, saved: Any, given: Account | None) -> Account | None:
    """The account a resumed run spends from: the one its checkpoint names (rebuilt when not passed again);
    a different key is refused, so that a resume can never leave or swap its account."""
    if not saved:
        return given
    if given is None:
        return Account.from_description(saved)
    if given.key != saved.get("key") or given.window != saved.get("window"):
        raise ConfigError(
            f"thread {thread_id!r} was started with the account {saved.get('key')!r} ({saved.get('window')}); "
            f"it cannot resume on {given.key!r} ({given.window}): pass the same account, or none"
        )
    return given


@dataclass(frozen=True, slots=True)
class Runs:
    """The run mechanics of one agent: its graph, core settings and the choices that shape a run."""

    graph: Any
    settings: LoopSettings
    planner: str
    takes_history: bool
    checkpointer: Any
    budget_scope: str
    on_exhausted: str
    output_type: type[BaseModel] | None

    def config(self, thread_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": thread_id}, "recursion_limit": 4 * self.settings.max_turns + 10}

    def kwargs(self) -> dict[str, Any]:
        # with a checkpointer, each step's checkpoint is written before the next starts (at most once)
        return {"durability": "sync"} if self.checkpointer is not None else {}

    async def thread_state(self, thread_id: str | None) -> dict[str, Any]:
        """What the thread's checkpoint holds ({} for a new thread); a thread paused for a decision or a grant
        takes no new question (it would drop the pause without a word)."""
        if self.checkpointer is None or thread_id is None:
            return {}
        snapshot = await self.graph.aget_state(self.config(thread_id))
        if getattr(snapshot, "interrupts", ()):
            how = "grant= or grant='decline'" if request_of(snapshot.interrupts) is not None else "decisions="
            raise ConfigError(
                f"thread {thread_id!r} is paused, waiting for {how}: a new question would drop that pause. "
                f"Resume it first (agent.aresume({thread_id!r}, {how.split(' or ')[0]}...)), or ask on a new thread"
            )
        return dict(snapshot.values or {})

    async def checkpoint_id(self, thread_id: str) -> str | None:
        """The thread's latest checkpoint, as a request sees it before it waits for the thread."""
        if self.checkpointer is None:
            return None
        return checkpoint_of(await self.graph.aget_state(self.config(thread_id)))

    def opening(self, question: Question) -> list[Message]:
        history = conversation(question)
        if len(history) > 1 and not self.takes_history:
            raise ConfigError(
                f"a message history is supported by the react and tracker planners; {self.planner!r} takes one "
                "question (a string)"
            )
        return history

    async def start(
        self,
        question: Question,
        thread_id: str | None,
        ledger: Ledger | None,
        account: Account | None,
        budget: Budget,
    ) -> tuple[AgentState, RunnableConfig, MeteredRun]:
        """A new run: its ledger (a parent's child, the thread's, or a fresh one of ``budget``), its account (the
        one given, else an evaluation's sweep-wide one), and the graph's input."""
        tid = thread_id or uuid.uuid4().hex
        if account is None and ledger is None:
            account = default_account.get()  # an evaluation's sweep-wide account, when one is set
        saved = await self.thread_state(thread_id)
        if ledger is not None:
            if account is not None:
                if ledger.account is not None and ledger.account is not account:
                    raise ConfigError("the ledger passed already has an account: pass one or the other")
                ledger.account = account
        elif self.budget_scope == "thread" and saved.get("ledger"):
            ledger = Ledger.from_snapshot(saved["ledger"], account=account)
        else:
            ledger = Ledger(budget, account=account)
        run = self.settings.new_run(ledger)
        state: AgentState = {
            "messages": self.opening(question),
            "ledger": run.ledger.snapshot(),
            "run_id": run.id,
            "phase": "act",
            "turns": 0,
            "answer": None,
            "stop": None,
            "inflight": [],
            "account": None if run.ledger.account is None else run.ledger.account.describe(),
        }
        return state, self.config(tid), run

    async def resumed(
        self, thread_id: str, account: Account | None, decisions: Any, grant: Any, seen: str | None
    ) -> tuple[Any, RunnableConfig, MeteredRun, dict[str, Any]]:
        """What a resume starts from: the graph's input, its config, the run rebuilt from the checkpoint's
        ledger (and account), and the state so far. ``seen`` is the checkpoint the request was made against:
        a decision or grant for a pause that another request answered meanwhile is refused."""
        if self.checkpointer is None:
            raise ConfigError("resume needs an Agent built with checkpointer=...")
        config = self.config(thread_id)
        snapshot = await self.graph.aget_state(config)
        if not snapshot.values:
            raise ConfigError(f"no checkpoint for thread {thread_id!r}")
        if (decisions is not None or grant is not None) and checkpoint_of(snapshot) != seen:
            raise ConfigError(
                f"thread {thread_id!r} moved on while this request waited for it: another request already "
                "answered the pause this decision or grant was for, so it is not applied again. Read the "
                "thread's state (a new pause has its own request) and decide again"
            )
        account = _resumed_account(thread_id, snapshot.values.get("account"), account)
        run = self.settings.new_run(
            Ledger.from_snapshot(snapshot.values.get("ledger") or {}, account=account)
        )
        run.id = snapshot.values.get("run_id") or run.id
        start = self.resume_input(thread_id, getattr(snapshot, "interrupts", ()), decisions, grant, run)
        return start, config, run, dict(snapshot.values)

    @staticmethod
    def resume_input(thread_id: str, interrupts: Any, decisions: Any, grant: Any, run: MeteredRun) -> Any:
        """The graph's input for a resume: the grant or the decisions its pause waits for (checked here, before
        the checkpoint moves), or nothing after a crash."""
        if request_of(interrupts) is not None:
            if decisions is not None or grant is None:
                raise ConfigError(
                    f"thread {thread_id!r} is paused because a budget ran out: resume it with grant= (more of "
                    'each cap, e.g. {"search": 2, "usd": "0.50"}) or grant="decline"'
                )
            more = read_grant(grant, run.ledger)
            return Command(resume={"grant": plain(more)} if more else DECLINE)
        if grant is not None:
            raise ConfigError(f"thread {thread_id!r} is not paused for budget: grant= does not apply")
        pending = _pending(interrupts)
        if decisions is not None and not pending:
            raise ConfigError(f"thread {thread_id!r} has no tool calls awaiting a decision")
        if decisions is None and pending:
            raise ConfigError(
                f"thread {thread_id!r} has tool calls awaiting a decision: pass decisions= "
                '("approve", "reject", or {call_id: "approve" | "reject" | {"action": "edit", "arguments": {...}}})'
            )
        if isinstance(decisions, Mapping) and (stale := sorted(set(decisions) - {c.id for c in pending})):
            raise ConfigError(
                f"thread {thread_id!r}: decisions name calls that are not awaiting one ({', '.join(map(str, stale))}); "
                f"pending: {', '.join(c.id for c in pending)}"
            )
        return Command(resume=decisions) if decisions is not None else None

    async def set_caps(self, thread_id: str, caps: Mapping[str, Any]) -> dict[str, Any]:
        """An operator's change to a thread's caps, written to its checkpoint (the caller owns the thread)."""
        from decimal import Decimal

        from .pause import read_caps

        config = self.config(thread_id)
        snapshot = await self.graph.aget_state(config)
        if not snapshot.values or not snapshot.values.get("ledger"):
            raise ConfigError(f"no checkpoint for thread {thread_id!r}")
        if getattr(snapshot, "interrupts", ()) or snapshot.next:
            raise ConfigError(
                f"thread {thread_id!r} is paused or mid-run: resume it (grant= raises a run paused at "
                "exhaustion) and change its caps after"
            )
        ledger = Ledger.from_snapshot(snapshot.values["ledger"])
        for key, cap in read_caps(caps, ledger).items():  # saved only when every one is set
            ledger.set_cap(key, cap, by="operator")
        await self.graph.aupdate_state(config, {"ledger": ledger.snapshot()})
        return {
            k.removeprefix("tool:"): str(v) if isinstance(v, Decimal) else v for k, v in ledger.limits.items()
        }

    def result(self, final: dict[str, Any], live: Ledger, config: RunnableConfig) -> RunResult:
        reason = StopReason.of(final.get("stop"))
        pending = _pending(final.get("__interrupt__"))
        request = request_of(final.get("__interrupt__"))
        if pending:
            ids = ", ".join(c.id for c in pending)
            reason = StopReason("interrupted", message=f"tool calls await a decision: {ids}")
        elif request is not None:
            said = (
                f"paused: {request['message'] or 'a budget ran out'} Resume with grant= or grant='decline'."
            )
            reason = StopReason("interrupted", request["resource"], said)
        elif final.get("phase") not in ("done", None) and not final.get("stop"):
            reason = StopReason("interrupted", message="the run was interrupted before it finished")
        result = RunResult.of(
            final.get("answer"),
            reason,
            live,
            final.get("messages", []),
            thread_id=(config.get("configurable") or {}).get("thread_id"),
            pending=pending,
            budget_request=request,
            details=_details(final),
        )
        if self.on_exhausted == "raise" and reason.kind == "budget_exhausted":
            raise BudgetExhausted(f"run stopped: {reason}", result)
        return result

    async def structured(self, result: RunResult, run: MeteredRun) -> RunResult:
        """With ``output_type``: validate the answer; on failure, one metered retry that shows the error."""
        if self.output_type is None or result.pending:
            return result
        output, error = parse_output(self.output_type, result.answer)
        extra: list[Message] = []
        answer = result.answer
        if output is None and error is not None:
            question = next((m.content for m in reversed(result.messages) if m.role == "user"), "")
            s = self.settings
            output, error, extra, answer = await repair_output(
                run,
                self.output_type,
                s.system_prompt,
                question,
                result.answer,
                error,
                s.settings,
                s.answer_max_tokens,
            )
        return replace(
            result,
            answer=answer,
            output=output,
            output_error=error,
            messages=[*result.messages, *extra],
            usage=run.ledger.usage(),
            ledger=run.ledger.snapshot(),
        )
