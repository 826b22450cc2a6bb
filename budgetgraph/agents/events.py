"""Typed events of ``Agent.astream``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..models.messages import Message, ToolCall

if TYPE_CHECKING:
    from .agent import RunResult

__all__ = ["AgentEvent", "BudgetUpdate", "FinalAnswer", "ModelTurn", "ToolResult"]


@dataclass(frozen=True, slots=True)
class ModelTurn:
    """The model replied (text and/or tool calls); ``node`` is "model" or "answer"."""

    message: Message
    node: str


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A tool call finished, was refused, or was malformed (the content says which)."""

    name: str
    call: ToolCall | None
    content: str


@dataclass(frozen=True, slots=True)
class BudgetUpdate:
    """The ledger after a batch of tool calls."""

    ledger: dict[str, Any]
    regime: str


@dataclass(frozen=True, slots=True)
class FinalAnswer:
    result: RunResult


AgentEvent = ModelTurn | ToolResult | BudgetUpdate | FinalAnswer
