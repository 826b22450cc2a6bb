"""Message history in and out: budgetgraph :class:`Message` objects from and to LangChain ``BaseMessage``s
(``HumanMessage``, ``AIMessage`` with ``tool_calls``, ``ToolMessage``, ``SystemMessage``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from ..errors import ConfigError
from .messages import Message, ToolCall

__all__ = ["conversation", "from_langchain", "to_langchain"]


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            else:
                kind = block.get("type") if isinstance(block, dict) else type(block).__name__
                raise ConfigError(f"{where}: a {kind!r} content block is not supported; only text is")
        return "".join(parts)
    raise ConfigError(f"{where}: content of type {type(content).__name__} is not text")


def from_langchain(messages: Sequence[BaseMessage | Message]) -> list[Message]:
    """LangChain messages (budgetgraph ones pass through) as budgetgraph messages."""
    out: list[Message] = []
    for i, m in enumerate(messages):
        where = f"message {i} ({type(m).__name__})"
        if isinstance(m, Message):
            out.append(m)
        elif isinstance(m, HumanMessage):
            out.append(Message.user(_text(m.content, where)))
        elif isinstance(m, SystemMessage):
            out.append(Message.system(_text(m.content, where)))
        elif isinstance(m, AIMessage):
            calls = [
                ToolCall(str(c.get("id") or f"call_{i}_{j}"), c["name"], dict(c.get("args") or {}))
                for j, c in enumerate(m.tool_calls)
            ]
            out.append(Message.assistant(_text(m.content, where), calls))
        elif isinstance(m, ToolMessage):
            failed = getattr(m, "status", "success") == "error"
            out.append(
                Message.tool(_text(m.content, where), m.tool_call_id, m.name, "error" if failed else "ok")
            )
        else:
            raise ConfigError(f"{where}: only human, AI, tool and system messages can be converted")
    return out


def to_langchain(messages: Sequence[Message]) -> list[BaseMessage]:
    """budgetgraph messages as LangChain messages (tool calls and their ids kept)."""
    out: list[BaseMessage] = []
    for m in messages:
        if m.role == "user":
            out.append(HumanMessage(m.content))
        elif m.role == "system":
            out.append(SystemMessage(m.content))
        elif m.role == "assistant":
            calls = [
                {"name": c.name, "args": dict(c.arguments), "id": c.id, "type": "tool_call"}
                for c in m.tool_calls
            ]
            out.append(AIMessage(m.content, tool_calls=calls))
        else:
            failed = m.status in ("error", "refused")  # LangChain's status: success | error
            out.append(
                ToolMessage(
                    m.content,
                    tool_call_id=m.tool_call_id or "",
                    name=m.name,
                    status="error" if failed else "success",
                )
            )
    return out


def conversation(question: str | Sequence[BaseMessage | Message]) -> list[Message]:
    """A run's opening messages: a question, or a history (ours or LangChain's) that ends with the user's
    turn. System messages are refused: the agent's system prompt is its own (use ``instructions=``)."""
    if isinstance(question, str):
        return [Message.user(question)]
    history = from_langchain(list(question))
    if not history or history[-1].role != "user":
        raise ConfigError("a message history must end with the user's message (the question to answer now)")
    if any(m.role == "system" for m in history):
        raise ConfigError(
            "a message history cannot carry a system message: the agent has its own system prompt; pass "
            "Agent(instructions=...) to add to it"
        )
    answered = {m.tool_call_id for m in history if m.role == "tool"}
    asked = {c.id for m in history if m.role == "assistant" for c in m.tool_calls}
    if asked - answered:
        raise ConfigError(f"the history has tool calls with no tool result: {sorted(asked - answered)}")
    return history
