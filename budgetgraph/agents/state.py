"""Graph state: messages, the ledger snapshot, and where the loop stands."""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, TypedDict

from ..models.messages import Message

__all__ = ["AgentState", "Phase", "StopInfo"]

Phase = Literal["act", "tools", "run_tools", "answer", "pause", "done"]


class StopInfo(TypedDict, total=False):
    """Why a run ended: ``kind`` is answered | budget_exhausted | max_turns | context_full | overrun | error."""

    kind: str
    resource: str
    message: str


class AgentState(TypedDict, total=False):
    messages: Annotated[list[Message], operator.add]
    ledger: dict[str, Any]
    """The ledger's snapshot after every node: what a checkpoint resumes from."""
    run_id: str
    phase: Phase
    turns: int
    answer: str | None
    stop: StopInfo | None
    inflight: list[dict[str, Any]]
    """Tool calls admitted and not yet settled (a durable graph checkpoints them before they run)."""
    notes: dict[str, Any]
    idle: int
    """Consecutive turns without a tool call (budget forcing stops at ``NUDGE_LIMIT``)."""
    details: dict[str, Any]
    """What a planner reports about its run (Adaptive-Consistency: samples drawn, votes, why it stopped)."""
    refused: list[str]
    refused_turns: int
    """Consecutive turns whose every call was refused (a run goes on after one, not after two)."""
    read_asked: int
    """Times the agent was asked to read before its answer was taken (``min_reads``; an old True is 1)."""
    go_on: bool
    """The last reply was only an estimate of calls still needed: the next turn must call a tool."""
    estimates: Annotated[list[dict[str, Any]], operator.add]
    """The budget-aware stop's estimates, each with what was used and left when it was made."""
    account: dict[str, Any] | None
    """The budget store account the run spends from (store, key, window, caps; never a secret): a resume
    rebuilds it, or is refused, so that no resumed call escapes the account."""
