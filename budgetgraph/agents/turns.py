"""Turn control for agent loops (papers.md section 7): a turn cap from the model's own turn distribution, the
reminder every turn carries, and the dynamic variant that grants more turns when the agent asks for them."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .._files import loads, read_text
from ..errors import ConfigError

__all__ = [
    "TURN_LIMIT_REACHED",
    "TURN_REMINDER",
    "TurnControl",
    "baseline_turns",
    "percentile",
    "turn_control",
]

TURN_REMINDER = "ENVIRONMENT REMINDER: You have {n} turns left to complete the task."
TURN_LIMIT_REACHED = (
    "ENVIRONMENT REMINDER: You have used all {used} turns you were given. If you need more turns to finish, "
    "reply with <more_turns>why you need them</more_turns> and nothing else; otherwise give your final answer now."
)
MORE_TURNS = re.compile(r"<more_turns>\s*(.*?)\s*(?:</more_turns>|$)", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class TurnControl:
    """``cap`` turns to start with (the budget's ``turns``); with ``ceiling``, the dynamic variant: at the cap
    the agent may ask for ``step`` more, granted (a journaled budget change) until ``ceiling`` turns in all."""

    cap: int
    ceiling: int | None = None
    step: int = 0
    reminder: bool = True
    label: str = ""

    def __post_init__(self) -> None:
        if self.cap < 1:
            raise ConfigError(f"a turn cap must be at least 1, got {self.cap}")
        if self.ceiling is not None and (self.ceiling < self.cap or self.step < 1):
            raise ConfigError(f"dynamic turns need ceiling >= cap and step >= 1, got {self}")

    @property
    def dynamic(self) -> bool:
        return self.ceiling is not None

    def extension(self, limit: int) -> int:
        """Turns to grant when the current cap is ``limit``: 0 once the ceiling is reached."""
        if self.ceiling is None:
            return 0
        return max(0, min(self.step, self.ceiling - limit))


def percentile(turns: Sequence[int], q: float) -> int:
    """The nearest-rank ``q``-th percentile (0-100) of a turn distribution, at least 1."""
    if not turns:
        raise ConfigError("a percentile turn cap needs a baseline with at least one run")
    ordered = sorted(turns)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return max(1, int(ordered[rank - 1]))


def baseline_turns(path: str | Path, planner: str | None = None, budget: str | None = None) -> list[int]:
    """Acting turns per episode in a results file (``budgetgraph eval`` output), of one planner and budget
    when given (the uncapped baseline a percentile cap is read from)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"turn baseline not found: {path} (a results file of an uncapped run)")
    turns = []
    for n, line in enumerate(read_text(path, "results file").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = loads(line)
        except json.JSONDecodeError:
            raise ConfigError(f"{path}:{n}: not valid JSON; is this a results file?") from None
        if not isinstance(rec, dict) or rec.get("type") != "episode" or rec.get("error"):
            continue
        if (planner and rec.get("planner") != planner) or (budget and rec.get("budget") != budget):
            continue
        act = ((rec.get("usage") or {}).get("by_role") or {}).get("act") or {}
        turns.append(int(act.get("llm_calls", 0)))
    if not turns:
        raise ConfigError(f"{path}: no episodes of planner {planner!r} budget {budget!r} to take turns from")
    return turns


def turn_control(spec: int | str, baseline: Sequence[int] | None = None) -> TurnControl:
    """``5`` (a fixed cap), ``"p75"`` (that percentile of ``baseline``), ``"dynamic"`` (start at p25, up to p90,
    granting at a time the gap from the start to the percentile halfway between) or ``"dynamic:p50:p90"``."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        return TurnControl(spec, label=str(spec))
    text = str(spec).strip().lower()
    if text.isdigit():
        return TurnControl(int(text), label=text)

    def pct(part: str) -> int:
        if not re.fullmatch(r"p\d{1,2}(\.\d+)?|p100", part):
            raise ConfigError(
                f"turn cap {spec!r}: expected a number, pNN, or dynamic[:pNN:pNN], got {part!r}"
            )
        return percentile(list(baseline or []), float(part[1:]))

    if text.startswith("dynamic"):
        parts = text.split(":")[1:] or ["p25", "p90"]
        if len(parts) != 2:
            raise ConfigError(f"turn cap {spec!r}: write dynamic or dynamic:pSTART:pCEILING")
        start, ceiling = pct(parts[0]), pct(parts[1])
        middle = percentile(list(baseline or []), (float(parts[0][1:]) + float(parts[1][1:])) / 2)
        return TurnControl(start, max(ceiling, start + 1), max(1, middle - start), label=text)
    return TurnControl(pct(text), label=text)
