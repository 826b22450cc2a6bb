"""Prompt-prefix reuse for the embedded model that does not change its replies.

llama.cpp's numbers for a token depend on how the prompt was cut into physical batches (``n_ubatch``): a
prompt evaluated in one go and the same prompt evaluated after a cached prefix give logits that differ in
the last bits, enough to flip a greedy choice now and then. So a reply would depend on what ran before it.

The rule here: a prompt is always evaluated in ubatches aligned to multiples of ``ubatch`` from position 0,
exactly as a cold context would cut it, and only the key/value cache of *whole* aligned prompt ubatches is
reused (a partial last ubatch and generated tokens, which were decoded one at a time, are evaluated again).
Every token's numbers are then those of a cold evaluation, whatever the cache held. Saved prompt states
(bounded by bytes, least recently used first out) let that reuse survive switching between prompts.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_UBATCH", "PrefixReuse", "common_prefix", "state_bytes"]

DEFAULT_UBATCH = 64
"""The physical batch: reuse is rounded down to a multiple of it (on average half of it is evaluated again)."""


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def state_bytes(state: Any) -> int:
    """All a saved llama state holds: the KV bytes plus its token ids and its (one row of) logits."""
    return int(state.llama_state_size) + int(state.scores.nbytes) + int(state.input_ids.nbytes)


@dataclass
class _Saved:
    state: Any
    tokens: tuple[int, ...]
    exact: int  # leading positions computed as whole aligned prompt ubatches


class PrefixReuse:
    """Decides, before each completion, how much of the context to keep, and saves prompt states after it."""

    def __init__(self, llm: Any, ubatch: int = DEFAULT_UBATCH, capacity_bytes: int = 0) -> None:
        self.llm = llm
        self.ubatch = ubatch
        self.capacity = capacity_bytes
        self.exact = 0  # of the live context
        self.saved: OrderedDict[tuple[int, ...], _Saved] = OrderedDict()
        self.loads = 0

    @property
    def saved_bytes(self) -> int:
        return sum(state_bytes(s.state) for s in self.saved.values())

    def _align(self, n: int) -> int:
        return (n // self.ubatch) * self.ubatch

    def prepare(self, tokens: Sequence[int]) -> int:
        """Set the live context to the longest exact, aligned prefix of ``tokens`` (restoring a saved state
        when one holds more of it); returns how many tokens are reused."""
        llm = self.llm
        live = list(llm.input_ids[: llm.n_tokens])
        here = min(common_prefix(live, tokens), self.exact)
        best: _Saved | None = None
        for saved in self.saved.values():
            p = min(common_prefix(saved.tokens, tokens), saved.exact)
            if p > here:
                here, best = p, saved
        if best is not None:
            llm.load_state(best.state)
            self.exact = best.exact
            self.saved.move_to_end(best.tokens)
            self.loads += 1
        reuse = self._align(min(here, len(tokens) - 1))
        llm.n_tokens = reuse  # Llama.generate reuses exactly this prefix and evaluates the rest
        return reuse

    def interrupted(self) -> None:
        """A prompt evaluation stopped part-way: what is exact is its whole ubatches so far."""
        self.exact = self._align(int(self.llm.n_tokens))

    def finished(self, prompt: Sequence[int]) -> None:
        """After a completion of ``prompt``: record what is exact now, and save the state for later."""
        self.exact = self._align(len(prompt))
        if self.capacity <= 0 or self.exact == 0:
            return
        llm = self.llm
        state = llm.save_state()
        state.scores = state.scores[-1:].copy()  # one row of logits is enough: the last token is re-evaluated
        key = tuple(int(t) for t in llm.input_ids[: llm.n_tokens])
        self.saved.pop(key, None)
        self.saved[key] = _Saved(state, key, self.exact)
        while self.saved and self.saved_bytes > self.capacity:
            self.saved.popitem(last=False)
