"""Adaptive-Consistency, fixed-N majority voting and Best-of-N over whole episodes, under the run's one ledger.

Each sample is a run of the sample planner (react by default) on a child ledger of the run's, sampled at
``sample_temperature`` with its own seed. Answers are grouped by ``answer_key`` (the coding environment groups
code by its behaviour on the visible tests); the majority group's first answer is the answer. ``consistency``
stops as soon as the Beta / Dirichlet rule is confident; ``majority`` always draws ``samples``; ``best_of``
draws ``samples`` and an LLM judge (role ``select``) picks one, as the BATS paper's Best-of-N baseline. Every
sample's answer is in the run's details, so an evaluation reports pass@N beside it. Sampling also stops when
the budget cannot pay for another episode.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..budget.ledger import Ledger
from ..errors import BudgetExceeded, ModelError
from ..meter import ModelMeter
from ..models.base import sampling
from ..models.messages import Message, ModelSettings
from ..planners.bats import SELECT, Selection, parse_structured, schema_tool
from ..planners.consistency import StopRule, majority, stop_verdict
from .result import Delegated, RunResult, StopReason, SubRunner

if TYPE_CHECKING:
    from .loop.settings import LoopSettings
    from .options import SamplingOptions

__all__ = ["Sampled", "Sampler", "default_key", "judge", "sample_answers"]

AnswerKey = Callable[[str | None], Hashable]


def default_key(answer: str | None) -> Hashable:
    """Answers as text, compared case- and space-insensitively (None: no answer, a group of its own)."""
    return None if answer is None else " ".join(answer.lower().split())


@dataclass(frozen=True, slots=True)
class Sampled:
    answer: str | None
    chosen: RunResult | None
    details: dict[str, Any] = field(default_factory=dict)
    runs: tuple[RunResult, ...] = ()
    """Every sampled run, in order (the judge of Best-of-N reads their tool calls)."""


def _refused(result: RunResult) -> bool:
    """The budget could not pay for the sample's first model call: nothing was drawn."""
    return result.stop_reason.kind == "budget_exhausted" and result.usage.llm_calls == 0


async def sample_answers(
    sampler: SubRunner,
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
            "answers": answers,
        },
        tuple(results),
    )


_JUDGE_TOOL = schema_tool("select_answer", Selection, "Select the best answer by its number.")


def _brief(result: RunResult) -> str:
    """A sample's tool calls, for the judge: what it looked at, not its raw results."""
    calls = [f"{c.name}({str(c.arguments)[:120]})" for m in result.messages for c in m.tool_calls]
    return "; ".join(calls[-6:]) or "no tool calls"


def _vote_stands(sampled: Sampled, why: str) -> Sampled:
    return replace(sampled, details={**sampled.details, "judge": why})


async def judge(cfg: LoopSettings, question: str, ledger: Ledger, sampled: Sampled) -> Sampled:
    """Best-of-N: the judge reasons, then picks one of the distinct answers; the vote stands when the judge
    cannot be paid for or gives no valid number (said in the details)."""
    answers, results = sampled.details.get("answers") or [], sampled.runs
    distinct = [i for i, a in enumerate(answers) if a is not None and a not in answers[:i]]
    if len(distinct) < 2:
        return _vote_stands(sampled, "one answer")
    listing = "\n".join(f"{n}. {answers[i]} (calls: {_brief(results[i])})" for n, i in enumerate(distinct, 1))
    prompt = [Message.user(SELECT.format(question=question, attempts=listing))]
    meter = ModelMeter(cfg.model, ledger, cfg.prices)
    try:
        response = await meter.ask(
            prompt, role="select", max_tokens=cfg.answer_max_tokens, settings=cfg.settings, tool=_JUDGE_TOOL
        )
    except (BudgetExceeded, ModelError) as exc:
        return _vote_stands(sampled, f"not run: {exc}")
    pick = next((parse_structured(Selection, c.arguments) for c in response.message.tool_calls), None)
    if not isinstance(pick, Selection) or not 1 <= pick.index <= len(distinct):
        return _vote_stands(sampled, "no valid pick")
    chosen = distinct[pick.index - 1]
    details = {**sampled.details, "judge": "picked", "chosen": chosen, "judge_reason": pick.reason[:300]}
    return Sampled(answers[chosen], results[chosen], details, results)


class Sampler:
    """The sampling planners' work: sample ``sampler``'s episodes, vote (or, ``best_of``, judge), and report
    the samples in the run's details."""

    def __init__(
        self,
        cfg: LoopSettings,
        sampler: SubRunner,
        options: SamplingOptions,
        rule: str,
        best_of: bool = False,
    ) -> None:
        self.cfg, self.sampler, self.options = cfg, sampler, options
        self.rule: StopRule = rule  # type: ignore[assignment]
        self.best_of = best_of

    async def delegate(self, question: str, ledger: Ledger) -> Delegated:
        out = await sample_answers(
            self.sampler,
            question,
            ledger,
            samples=self.options.samples,
            rule=self.rule,
            temperature=self.options.sample_temperature,
            key=self.options.answer_key,
        )
        if self.best_of and out.chosen is not None:
            out = await judge(self.cfg, question, ledger, out)
        transcript = list(out.chosen.messages)[1:] if out.chosen is not None else []
        stop = StopReason("answered" if out.answer is not None else "budget_exhausted", "", f"{out.details}")
        return Delegated(out.answer, transcript, stop, out.details)
