"""Streamed reply text without the agent's markup: ``<answer>`` tags dropped, ``<tool_call>`` blocks hidden,
even when a tag is split across deltas."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["MarkupStripper"]

_DROP = ("<answer>", "</answer>")
_HIDE_OPEN, _HIDE_CLOSE = "<tool_call>", "</tool_call>"
_TAGS = (*_DROP, _HIDE_OPEN, _HIDE_CLOSE)


class MarkupStripper:
    """Feed it deltas; it passes on the clean text. Call :meth:`flush` when the reply ends."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._pending = ""
        self._hidden = False

    def __call__(self, text: str) -> None:
        self._pending += text
        out: list[str] = []
        while self._pending:
            lower = self._pending.lower()
            at = lower.find("<")
            if at < 0:
                if not self._hidden:
                    out.append(self._pending)
                self._pending = ""
                break
            if at and not self._hidden:
                out.append(self._pending[:at])
            rest, lower = self._pending[at:], lower[at:]
            tag = next((t for t in _TAGS if lower.startswith(t)), None)
            if tag is None:
                if any(t.startswith(lower) for t in _TAGS):  # maybe a tag cut by the delta: wait for more
                    self._pending = rest
                    break
                if not self._hidden:
                    out.append("<")
                self._pending = rest[1:]
                continue
            if tag == _HIDE_OPEN:
                self._hidden = True
            elif tag == _HIDE_CLOSE:
                self._hidden = False
            self._pending = rest[len(tag) :]
        if out and (clean := "".join(out)):
            self._emit(clean)

    def flush(self) -> None:
        """The reply ended: pass on a held-back ``<...`` that turned out not to be a tag."""
        if self._pending and not self._hidden:
            self._emit(self._pending)
        self._pending = ""
        self._hidden = False
