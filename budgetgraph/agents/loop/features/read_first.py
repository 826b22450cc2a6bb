"""Reading before answering (``AgentOptions.read_first``, ``min_reads``): an agent that answers after fewer
reading calls (``Tool(reads=True)``) than ``min_reads`` is asked for one more document, once per document
missing, while a reading tool is funded; the next turn offers only the reading tools and must call one."""

from __future__ import annotations

from typing import Any, ClassVar

from ....models.messages import Message
from ...nudge import READ_FIRST, READ_MORE
from ..hooks import Hook, Jump, Reply, Turn

__all__ = ["ReadFirst"]


class ReadFirst(Hook):
    state: ClassVar[dict[str, Any]] = {"read_asked": int}
    """Times the agent was asked to read before its answer was taken (an old checkpoint's True is 1)."""

    def __init__(self, min_reads: int = 1, manner: str = "in one or two sentences") -> None:
        self.min_reads = min_reads
        self.manner = manner

    async def before_model(self, turn: Turn) -> Jump | None:
        last = turn.history[-1] if turn.history else None
        if turn.state.get("read_asked") and last is not None and last.role == "user" and turn.turns > 0:
            turn.narrow(lambda t: t.reads)  # the turn after the request: a reading call, as it asks
            turn.force = True
        return None

    async def after_model(self, turn: Turn, reply: Reply) -> Jump | None:
        if reply.calls:
            return None
        asked = int(turn.state.get("read_asked") or 0)
        readers = {t.name for t in turn.run.tools.tools.values() if t.reads}
        done = sum(c.name in readers for m in turn.history for c in m.tool_calls)
        funded = [t.name for t in turn.run.tools.available() if t.reads]
        if not readers or done >= self.min_reads or asked >= self.min_reads or not funded:
            return None
        ask = (READ_MORE if done else READ_FIRST).format(tools=" or ".join(funded), format=self.manner)
        turn.keep(Message.user(ask))
        turn.set("read_asked", asked + 1)
        turn.keep_answer(reply.answer or turn.state.get("answer"))
        return Jump.to_model()
