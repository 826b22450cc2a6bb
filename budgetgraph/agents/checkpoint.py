"""The checkpointer a graph is compiled with: its serializer told budgetgraph's state types."""

from __future__ import annotations

import logging
from typing import Any

from ..models.messages import Message, ToolCall

__all__ = ["registered"]


def registered(checkpointer: Any) -> Any:
    """The checkpointer, its serializer told the state's types (Message, ToolCall), so a checkpoint loads
    under LangGraph's strict msgpack allowlist too (the default in future LangGraph versions)."""
    serde = getattr(checkpointer, "serde", None)
    allow = getattr(serde, "with_msgpack_allowlist", None)
    if callable(allow):
        checkpointer.serde = allow([Message, ToolCall])
        _quiet_registered_types()
    return checkpointer


class _RegisteredTypes(logging.Filter):
    """Drops LangGraph's "Deserializing unregistered type" warning for budgetgraph's own state types: they are
    registered (strict mode loads them), but LangGraph's permissive default warns about every type."""

    OURS = {(t.__module__, t.__name__) for t in (Message, ToolCall)}

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (
            str(record.msg).startswith("Deserializing unregistered type") and tuple(args[:2]) in self.OURS
        )


def _quiet_registered_types() -> None:
    log = logging.getLogger("langgraph.checkpoint.serde.jsonplus")
    if not any(isinstance(f, _RegisteredTypes) for f in log.filters):
        log.addFilter(_RegisteredTypes())
