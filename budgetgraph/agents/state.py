"""Graph state: messages, the ledger snapshot, and where the loop stands."""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, TypedDict

from ..models.messages import Message

__all__ = ["AgentState", "Phase", "StopInfo"]

Phase = Literal["act", "tools", "answer", "done"]


class StopInfo(TypedDict, total=False):
    """Why a run ended: ``kind`` is answered | budget_exhausted | max_turns | context_full | error."""

    kind: str
    resource: str
    message: str


class AgentState(TypedDict, total=False):
    messages: Annotated[list[Message], operator.add]
    ledger: dict[str, Any]
    phase: Phase
    turns: int
    answer: str | None
    stop: StopInfo | None
