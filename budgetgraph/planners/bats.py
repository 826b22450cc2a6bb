"""BATS (papers.md section 1): the plan checklist, the verifier's structured verdict and decision rule, and
answer selection. The graph that runs them is ``agents.bats_graph``; this module holds no graph code.

Structured outputs (plan, verdict, selection) are requested as a forced call of one "submit" tool whose schema
is the pydantic model below: function calling is the structured-output path every backend has (the local
model decodes it under a GBNF grammar), and the arguments are validated with pydantic.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, ValidationError, field_validator

from ..errors import ConfigError
from ..models.messages import ToolSchema

__all__ = [
    "BATSOptions",
    "Decision",
    "PlanOut",
    "Selection",
    "Step",
    "Verdict",
    "add_steps",
    "answer_groups",
    "best_tier",
    "core_answer",
    "apply_budget_rule",
    "decide",
    "vote_winner",
    "mark",
    "rank_attempts",
    "render_checklist",
    "schema_tool",
]

Decision = Literal["SUCCESS", "CONTINUE", "PIVOT"]
Status = Literal["pending", "done", "failed", "partial"]
_MARK = {"pending": "[ ]", "done": "[x]", "failed": "[!]", "partial": "[~]"}

Mode = Literal["early_stop", "full"]
Rule = Literal["verifier", "fraction"]
ContextSchedule = Literal["paper", "every_verify"]
SelectionRule = Literal["tier", "consistency"]
Layout = Literal["system", "tail"]


@dataclass(frozen=True)
class BATSOptions:
    """How a BATS run is steered (``Agent(options=BATSOptions(mode=...))``; each is described in ``docs/planners.md``).

    ``max_attempts`` None: 3 in early-stop mode, unbounded in full mode and with consistency selection.
    """

    mode: Mode = "early_stop"
    """``early_stop``: end at the first SUCCESS; ``full``: keep attempting until a budget is spent."""
    max_attempts: int | None = None
    stop_on_exhausted: bool = False
    """Stop at the first exhausted tool budget, as the paper does (its fidelity runs name it); by default the
    run goes on while any capped tool can still be called."""
    rule: Rule = "verifier"
    """``verifier``: the verifier decides CONTINUE vs PIVOT, with our guards; ``fraction``: the old 30% rule."""
    context: ContextSchedule = "paper"
    """When the verifier's summary replaces the trajectory: after more than ten turns, or at every verdict."""
    selection: SelectionRule = "tier"
    """``tier``: the paper's C.4; ``consistency``: attempts until Adaptive-Consistency settles the majority."""
    layout: Layout = "system"
    """Where the run's state sits in the acting context: the system message, or after the trajectory."""

    def __post_init__(self) -> None:
        for name, kind in (
            ("mode", Mode),
            ("rule", Rule),
            ("context", ContextSchedule),
            ("selection", SelectionRule),
            ("layout", Layout),
        ):
            allowed = get_args(kind)
            if getattr(self, name) not in allowed:
                choices = " or ".join(repr(a) for a in allowed)
                raise ConfigError(f"bats_{name} must be {choices}, not {getattr(self, name)!r}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, not {self.max_attempts}")

    @property
    def attempts_cap(self) -> int:
        """The most attempts a run makes (full mode and consistency keep going until a budget ends them)."""
        if self.max_attempts is not None:
            return self.max_attempts
        return 10**6 if self.mode == "full" or self.selection == "consistency" else 3


class PlanOut(BaseModel):
    """The planner's output: the question's clues split in two, and the steps to take."""

    exploration: list[str] = Field(
        default_factory=list,
        description="broad clues that build the candidate set",
        json_schema_extra={"maxItems": 4},
    )
    verification: list[str] = Field(
        default_factory=list,
        description="narrow clues to check candidates against",
        json_schema_extra={"maxItems": 4},
    )
    steps: list[str] = Field(
        default_factory=list,
        description="2-5 short steps, each one search or one document",
        json_schema_extra={"maxItems": 5},
    )

    @field_validator("exploration", "verification", "steps", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> list[str]:
        """Small models write steps as objects or one string; keep their text."""
        return _as_texts(value)


class ConstraintCheck(BaseModel):
    constraint: str
    status: Literal["satisfied", "contradicted", "unverifiable"] = "unverifiable"


class Verdict(BaseModel):
    """The verifier's JSON: per-constraint checks, the decision, and the summary that replaces the trajectory."""

    checks: list[ConstraintCheck] = Field(default_factory=list, json_schema_extra={"maxItems": 8})
    decision: Decision = "CONTINUE"

    @field_validator("decision", mode="before")
    @classmethod
    def _decision(cls, value: Any) -> str:
        text = str(value or "").strip().upper()
        return next((d for d in ("SUCCESS", "PIVOT", "CONTINUE") if d in text), "CONTINUE")

    @field_validator("checks", mode="before")
    @classmethod
    def _checks(cls, value: Any) -> list[Any]:
        items = value if isinstance(value, list) else [value] if value else []
        out = []
        for item in items:
            if isinstance(item, dict):
                status = str(item.get("status", "unverifiable")).lower()
                status = status if status in ("satisfied", "contradicted", "unverifiable") else "unverifiable"
                text = item.get("constraint") or next((v for v in item.values() if isinstance(v, str)), "")
                out.append({"constraint": str(text), "status": status})
            else:
                out.append({"constraint": str(item), "status": "unverifiable"})
        return out

    @field_validator("found", mode="before")
    @classmethod
    def _found(cls, value: Any) -> list[str]:
        return _as_texts(value)

    justification: str = ""
    summary: str = Field(default="", description="what was found and what failed, in two or three sentences")
    found: list[str] = Field(
        default_factory=list,
        description="facts worth keeping for later attempts, each with where it was read",
    )
    next_step: str = Field(default="", description="what to do next (CONTINUE) or the new angle (PIVOT)")
    short_answer: str = Field(
        default="", description="the proposed answer cut to its core: a name, date, number, or yes / no"
    )


class Selection(BaseModel):
    """The judge's pick: the reasoning comes first, so the choice follows from it (C.4)."""

    reason: str = Field(default="", description="compare the candidates' evidence before choosing")
    index: int = Field(description="the number of the best attempt")


def _as_texts(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value] if value else []
    out = []
    for item in items:
        if isinstance(item, dict):
            texts = [str(v) for v in item.values() if isinstance(v, str | int | float) and str(v).strip()]
            item = " ".join(texts)
        if str(item).strip():
            out.append(str(item).strip())
    return out


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


def core_answer(proposed: str, short: str) -> str:
    """The verifier's short form of ``proposed`` when it is a part of it (the 1.5B model answers in sentences,
    which exact match scores 0); otherwise ``proposed``, so the verifier can shorten but never replace."""
    core = _words(short)
    return short.strip() if core and f" {core} " in f" {_words(proposed)} " else proposed


def schema_tool(name: str, model: type[BaseModel], description: str) -> ToolSchema:
    return ToolSchema(name, description, model.model_json_schema())


def parse_structured(model: type[BaseModel], arguments: Mapping[str, Any]) -> BaseModel | None:
    try:
        return model.model_validate(dict(arguments))
    except ValidationError:
        return None


# -- checklist: a list of {"id", "text", "status", "units"} dicts, so it is plain JSON in graph state ------
Step = dict[str, Any]


def add_steps(
    checklist: Sequence[Step], texts: Sequence[str], branch_of: str | None = None, *, first: bool = False
) -> list[Step]:
    """Add steps at the end (or, ``first``, before the first pending step: a CONTINUE's correction is the next
    thing to do); alternatives after a failure become numbered branches (2.1, 2.2) of ``branch_of``."""
    out = [dict(s) for s in checklist]
    if branch_of is None:
        top = sum(1 for s in out if "." not in s["id"])
        ids = [str(top + i + 1) for i in range(len(texts))]
    else:
        sub = sum(1 for s in out if s["id"].startswith(branch_of + "."))
        ids = [f"{branch_of}.{sub + i + 1}" for i in range(len(texts))]
    new = [
        {"id": i, "text": t.strip(), "status": "pending", "units": {}}
        for i, t in zip(ids, texts, strict=True)
        if t.strip()
    ]
    at = next((i for i, s in enumerate(out) if s["status"] == "pending"), len(out)) if first else len(out)
    return [*out[:at], *new, *out[at:]]


def current(checklist: Sequence[Step]) -> Step | None:
    return next((s for s in checklist if s["status"] == "pending"), None)


def mark(
    checklist: Sequence[Step], step_id: str, status: Status, units: Mapping[str, int] | None = None
) -> list[Step]:
    """Set a step's status and add the tool units it spent (steps are never deleted)."""
    out = []
    for s in checklist:
        s = dict(s)
        if s["id"] == step_id:
            s["status"] = status
            merged = dict(s.get("units", {}))
            for k, v in (units or {}).items():
                merged[k] = merged.get(k, 0) + v
            s["units"] = merged
        out.append(s)
    return out


def render_checklist(checklist: Sequence[Step]) -> str:
    lines = []
    for s in checklist:
        spent = ", ".join(f"{k}={v}" for k, v in s.get("units", {}).items())
        indent = "  " * s["id"].count(".")
        lines.append(
            f"{indent}{_MARK[s['status']]} {s['id']}. {s['text']}" + (f" ({spent})" if spent else "")
        )
    return "\n".join(lines) or "(no plan yet)"


def decide(verdict: Verdict, *, can_correct: bool, failures: int) -> Verdict:
    """The decision rule as the paper leaves it to the verifier, with three guards of ours: a contradicted
    constraint is a PIVOT; SUCCESS needs at least one check and every check satisfied (else it is CONTINUE: dig
    deeper); CONTINUE needs a tool unit left for the correction and fewer than two failed look-ups in this
    attempt (else PIVOT). The verifier's own decision stays in ``verdict.decision`` of the input."""
    decision = verdict.decision
    checks = verdict.checks
    if any(c.status == "contradicted" for c in checks):
        decision = "PIVOT"
    elif decision == "SUCCESS" and (not checks or any(c.status != "satisfied" for c in checks)):
        decision = "CONTINUE"
    if decision == "CONTINUE" and (not can_correct or failures >= 2):
        decision = "PIVOT"
    if decision == verdict.decision:
        return verdict
    why = f" [rule: {verdict.decision} -> {decision}]"
    return verdict.model_copy(update={"decision": decision, "justification": verdict.justification + why})


_RANK = {"SUCCESS": 0, "CONTINUE": 1, "UNVERIFIED": 2, "PIVOT": 3}


def _rank(attempt: Mapping[str, Any]) -> int:
    return _RANK.get(str(attempt.get("verifier", attempt.get("decision"))), 4)


def rank_attempts(attempts: Sequence[Mapping[str, Any]]) -> int:
    """Index of the best attempt by the verifier's own decision (``verifier``; a budget demotion does not make
    an answer worse), the latest first among equals."""
    return min(range(len(attempts)), key=lambda i: (_rank(attempts[i]), -i))


def best_tier(attempts: Sequence[Mapping[str, Any]]) -> list[int]:
    """Indices of the attempts whose verifier decision ranks best: the only ones the judge compares (C.4)."""
    top = min((_rank(a) for a in attempts), default=4)
    return [i for i, a in enumerate(attempts) if _rank(a) == top]


def answer_groups(
    attempts: Sequence[Mapping[str, Any]], key: Callable[[str], Hashable] | None = None
) -> list[Hashable]:
    """Each attempt's answer as the vote groups it: by ``key`` (behaviour, for code), else by its words."""
    group = key or _words
    return [group(str(a["answer"])) for a in attempts]


def vote_winner(
    attempts: Sequence[Mapping[str, Any]],
    indices: Sequence[int],
    key: Callable[[str], Hashable] | None = None,
) -> int | None:
    """The latest of ``indices`` whose answer (compared by ``key``, else by its words) is more common than every
    other answer among them, or None when no answer repeats more than the rest (the judge decides then)."""
    all_keys = answer_groups(attempts, key)
    keys = [all_keys[i] for i in indices]
    counts = {k: keys.count(k) for k in keys}
    ordered = sorted(counts.values(), reverse=True)
    if ordered[0] < 2 or (len(ordered) > 1 and ordered[0] == ordered[1]):
        return None
    winner = max(counts, key=lambda k: counts[k])
    return max(i for i, k in zip(indices, keys, strict=True) if k == winner)


def apply_budget_rule(verdict: Verdict, fraction_left: float | None, repeated_failures: int) -> Verdict:
    """Our earlier rule (``BATSOptions(rule="fraction")``): CONTINUE needs 30% of the scarcest budget left and
    fewer than two failed look-ups; otherwise PIVOT. Contradicted constraints can never be SUCCESS. The paper
    has no such fraction: :func:`decide` is the default."""
    decision = verdict.decision
    if decision == "SUCCESS" and any(c.status == "contradicted" for c in verdict.checks):
        decision = "PIVOT"
    if decision == "CONTINUE" and (
        (fraction_left is not None and fraction_left < 0.3) or repeated_failures >= 2
    ):
        decision = "PIVOT"
    if decision == verdict.decision:
        return verdict
    why = f" [budget rule: {verdict.decision} -> {decision}]"
    return verdict.model_copy(update={"decision": decision, "justification": verdict.justification + why})


SYSTEM = (
    "You are a careful research agent that plans, searches and verifies. Use the tools to find facts; never "
    "answer from memory. Follow your checklist, one step at a time. When the documents you read support an "
    "answer, reply with it inside <answer></answer>, as short as possible (a name, a date, yes or no)."
)
PLAN = (
    "Question: {question}\n\n{context}Split the question's clues into exploration constraints (broad, to find "
    "candidates) and verification constraints (narrow, to check a candidate), and write 2-5 short steps, each "
    "one search or one document to open. Remaining budget: {budget}. Call submit_plan."
)
VERIFY = (
    "You are the verifier of a research agent. You judge one proposed answer against the evidence the agent "
    "gathered; you do not search.\n\nQuestion: {question}\nProposed answer: {answer}\nThe agent's words around "
    "it: {around}\nConstraints from the question: {constraints}\n\nChecklist ([x] done, [!] failed, [~] partial, "
    "[ ] pending):\n{checklist}\n\nSummary of earlier attempts: {summary}\nFindings kept from earlier checks: "
    "{found}\n\nTool calls of this attempt:\n{calls}\n\nTool results of this attempt (newest last):\n{evidence}"
    "\n\nRemaining budget: {budget}.\n\nFirst check each constraint against the evidence: satisfied, "
    "contradicted or unverifiable. Then decide:\n- SUCCESS: every constraint is satisfied by the evidence.\n"
    "- CONTINUE (dig deeper): only a few constraints are unverifiable, the path is sound, one more look-up can "
    "close the gap, and the remaining budget has the units it needs.\n- PIVOT: a constraint is contradicted, "
    "the path is a dead end, the same information failed to be found more than once, or too little budget is "
    "left for a correction.\nThen write the justification; a summary of what was found and what failed; the "
    "findings worth keeping, each with the document it came from; the next step (CONTINUE) or the new angle "
    "(PIVOT); and the answer cut to its core (a name, date, number or yes / no). Call submit_verdict."
)
SELECT = (
    "Question: {question}\n\nCandidate answers, each with how it was found:\n{attempts}\n\nFirst reason: "
    "compare what each candidate's evidence supports and how specific it is. Then choose the most accurate and "
    "specific answer (never one that says none or unknown when another exists). Call select_answer with your "
    "reason first and then its number."
)
