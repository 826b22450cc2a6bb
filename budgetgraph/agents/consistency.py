"""Adaptive-Consistency and fixed-N majority voting over whole episodes, all under the run's one ledger.

Each sample is a run of the sample planner (react by default) on a child ledger of the run's, sampled at
``sample_temperature`` with its own seed. Answers are grouped by ``answer_key`` (the coding environment groups
code by its behaviour on the visible tests); the majority group's first answer is the answer. ``consistency``
stops as soon as the Beta / Dirichlet rule is confident; ``majority`` always draws ``samples``. Sampling also
stops when the budget cannot pay for another episode.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..budget.ledger import Ledger
from ..models.base import sampling
from ..models.messages import Message, ModelSettings
from ..planners.consistency import StopRule, majority, stop_verdict
from .state import StopInfo

if TYPE_CHECKING:
    from .agent import Agent, RunResult

__all__ = ["Sampled", "default_key", "sample_answers"]

AnswerKey = Callable[[str | None], Hashable]


def default_key(answer: str | None) -> Hashable:
    """Answers as text, compared case- and space-insensitively (None: no answer, a group of its own)."""
    return None if answer is None else " ".join(answer.lower().split())


@dataclass(frozen=True, slots=True)
class Sampled:
    answer: str | None
    chosen: RunResult | None
    details: dict[str, Any] = field(default_factory=dict)


def _refused(result: RunResult) -> bool:
    """The budget could not pay for the sample's first model call: nothing was drawn."""
    return result.stop_reason.kind == "budget_exhausted" and result.usage.llm_calls == 0


async def sample_answers(
    sampler: Agent,
    question: str,
    ledger: Ledger,
    *,
    samples: int,
    rule: StopRule,
    temperature: float,
    key: AnswerKey | None = None,
) -> Sampled:
    """Draw up to ``samples`` episodes of ``sampler`` one at a time; stop by ``rule``; vote."""
    key = key or default_key
    outer = sampling.get() or ModelSettings()
    base_seed = int(outer.get("seed", 0) or 0)
    answers: list[str | None] = []
    keys: list[Hashable] = []
    results: list[RunResult] = []
    confidence, used_rule, stopped = 0.0, str(rule), "max_samples"
    for k in range(samples):
        token = sampling.set(
            ModelSettings(**{**outer, "temperature": temperature, "seed": base_seed * 1000 + k})
        )
        try:
            result = await sampler.arun(question, ledger=ledger.child())
        finally:
            sampling.reset(token)
        if _refused(result):
            stopped = "budget"
            break
        results.append(result)
        answers.append(result.answer)
        keys.append(key(result.answer))
        verdict = stop_verdict(keys, rule)
        confidence, used_rule = verdict.confidence, verdict.rule
        if verdict.stop:
            stopped = "confident"
            break
        if result.stop_reason.kind == "overrun":
            stopped = "overrun"
            break
    if not results:
        return Sampled(None, None, {"samples": 0, "stopped": stopped})
    best = majority(keys)
    votes = sum(1 for k in keys if k == keys[best])
    return Sampled(
        answers[best],
        results[best],
        {
            "samples": len(results),
            "stopped": stopped,
            "rule": used_rule,
            "confidence": round(confidence, 4),
            "votes": votes,
            "groups": len(set(keys)),
            "chosen": best,
        },
    )


def delegate_for(agent: Agent, rule: StopRule) -> Callable[..., Any]:
    """The planner graph's delegate: sample, vote, and report the samples in the run's details."""

    async def delegate(
        question: str, ledger: Ledger
    ) -> tuple[str | None, list[Message], StopInfo, dict[str, Any]]:
        out = await sample_answers(
            agent.sampler(),
            question,
            ledger,
            samples=agent.samples,
            rule=rule,
            temperature=agent.sample_temperature,
            key=agent.answer_key,
        )
        transcript = list(out.chosen.messages)[1:] if out.chosen is not None else []
        kind = "answered" if out.answer is not None else "budget_exhausted"
        info: StopInfo = {"kind": kind, "resource": "", "message": f"{out.details}"}
        return out.answer, transcript, info, out.details

    return delegate
