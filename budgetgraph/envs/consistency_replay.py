"""Adaptive-Consistency replayed over a fixed-N majority sweep: where it would have stopped and what it chose.

Sample k of ``majority`` and of ``consistency`` is drawn with the same seed (``agents.consistency``), so
Adaptive-Consistency's samples are a prefix of majority@N's and its run follows from the recorded answers alone:
apply the stopping rule to each prefix of the answers' keys, vote on the prefix it stops at, score that answer.
This gives one sweep's worth of model calls for both planners, and any threshold, offline. It is a replay, not a
run: a live ``consistency`` run can differ where the backend is not deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..agents.consistency import default_key
from ..agents.result import RunResult, StopReason
from ..budget.ledger import Usage
from ..errors import ConfigError
from ..planners.consistency import THRESHOLD, StopRule, majority, stop_verdict
from .base import Env, Task

__all__ = ["Replayed", "replay_consistency", "replay_file"]


@dataclass(frozen=True, slots=True)
class Replayed:
    """One task: the fixed-N vote as recorded and as re-scored, and Adaptive-Consistency's replayed stop."""

    task_id: str
    drawn: int
    """Samples the majority run drew (N, or fewer where its budget stopped it)."""
    samples: int
    """Samples Adaptive-Consistency would have drawn."""
    correct: float
    """Adaptive-Consistency's chosen answer passes."""
    majority_correct: float
    """The recorded majority run's score."""
    majority_rescored: float
    """The majority vote over all drawn samples, scored from the answer alone as ``correct`` is (a check on
    the replay's scorer: it differs from ``majority_correct`` only where the recorded score read the chosen
    sample's transcript, e.g. code sent to a tool but not given as the answer)."""
    tokens: float
    """The majority run's tokens times samples / drawn: an estimate (the records hold no per-sample usage)."""
    confidence: float


def _answer_only(answer: str | None) -> RunResult:
    return RunResult(answer, StopReason("answered"), Usage(), [])


def replay_consistency(
    records: Sequence[Mapping[str, Any]],
    env: Env,
    *,
    rule: StopRule = "adaptive",
    threshold: float = THRESHOLD,
) -> list[Replayed]:
    """Replay each record's recorded samples (``details["answers"]``) under ``rule`` at ``threshold``."""
    tasks: dict[str, Task] = {t.id: t for t in env.tasks()}
    out: list[Replayed] = []
    scored: dict[tuple[str, str | None], float] = {}

    def correct(task: Task, answer: str | None) -> float:
        if (task.id, answer) not in scored:
            scored[(task.id, answer)] = env.score(task, _answer_only(answer)).get("correct", 0.0)
        return scored[(task.id, answer)]

    for record in records:
        answers = (record.get("details") or {}).get("answers")
        if not isinstance(answers, list) or not answers:
            continue
        task = tasks.get(str(record["task_id"]))
        if task is None:
            raise ConfigError(
                f"task {record['task_id']!r} of the results is not in this environment's data: replay with "
                "the data the sweep ran on"
            )
        key: Callable[[str | None], Hashable] = env.answer_key(task) or default_key
        keys = [key(a) for a in answers]
        stop, confidence = len(keys), 0.0
        for n in range(1, len(keys) + 1):
            verdict = stop_verdict(keys[:n], rule, threshold)
            confidence = verdict.confidence
            if verdict.stop:
                stop = n
                break
        usage = record.get("usage") or {}
        tokens = float(usage.get("input_tokens", 0)) + float(usage.get("output_tokens", 0))
        out.append(
            Replayed(
                task_id=task.id,
                drawn=len(keys),
                samples=stop,
                correct=correct(task, answers[majority(keys[:stop])]),
                majority_correct=float((record.get("scores") or {}).get("correct", 0.0)),
                majority_rescored=correct(task, answers[majority(keys)]),
                tokens=tokens * stop / len(keys),
                confidence=confidence,
            )
        )
    return out


def replay_file(
    path: str,
    planner: str | None = None,
    *,
    rule: StopRule = "adaptive",
    thresholds: Sequence[float] = (THRESHOLD,),
) -> tuple[str, dict[float, list[Replayed]]]:
    """Replay a results file's sampling episodes (of ``planner``, or the one sampling planner it holds) at each
    threshold, rebuilding the environment from the file's header."""
    from .registry import make_env
    from .results import read_results

    header, records = read_results([path])
    if header is None:
        raise ConfigError(f"{path} has no header line: it is not a budgetgraph results file")
    sampled = [r for r in records if isinstance((r.get("details") or {}).get("answers"), list)]
    labels = sorted({str(r["planner"]) for r in sampled})
    if planner is None:
        if len(labels) != 1:
            raise ConfigError(
                f"{path} holds {len(labels)} sampling planners ({', '.join(labels) or 'none'}): name one with "
                "--planner (a majority[samples=N] sweep is what is replayed)"
            )
        planner = labels[0]
    chosen = [r for r in sampled if r["planner"] == planner]
    if not chosen:
        raise ConfigError(
            f"{path} has no sampling episodes of {planner!r}; it has {', '.join(labels) or 'none'}"
        )
    spec = header.get("spec") or {}
    env = make_env(str(spec.get("env")), **dict(spec.get("env_options") or {}))
    return planner, {t: replay_consistency(chosen, env, rule=rule, threshold=t) for t in thresholds}
