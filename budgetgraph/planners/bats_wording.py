"""BATS's prompt texts for each kind of task: research (search and read documents) and code (write a function and
run its visible tests). The method is the same; only what a step, a check and an answer are differs."""

from __future__ import annotations

from dataclasses import dataclass

from .bats import PLAN, SELECT, SYSTEM, VERIFY

__all__ = ["CODE", "RESEARCH", "Wording", "wording"]


@dataclass(frozen=True)
class Wording:
    """The texts of one kind of task; ``core`` says whether the verifier's short form replaces the answer."""

    system: str
    plan: str
    verify: str
    select: str
    explore_label: str
    verify_label: str
    fallback_step: str
    """The one-step plan when the planner's output does not parse (``{question}`` is filled in)."""
    core: bool = True


RESEARCH = Wording(
    system=SYSTEM,
    plan=PLAN,
    verify=VERIFY,
    select=SELECT,
    explore_label="Exploration clues (combine one or two per query to find candidates): ",
    verify_label="Verification clues (check a candidate against these; never start from them): ",
    fallback_step="Search for the key entities of: {question}",
)

CODE = Wording(
    system=(
        "You are a careful programming agent that plans, tests and verifies. Write the function, run it "
        "against the visible tests with the tools, and fix what fails. When a run passes, reply with the "
        "complete function inside <answer></answer>, in one ```python block."
    ),
    plan=(
        "Task:\n{question}\n\n{context}Split the task into exploration constraints (the behaviours the function "
        "must have) and verification constraints (the examples and edge cases a solution must pass), and write "
        "2-5 short steps, each one tool call (write the function and run its visible tests, or check one edge "
        "case). Remaining budget: {budget}. Call submit_plan."
    ),
    verify=(
        "You are the verifier of a programming agent. You judge one proposed solution against the test runs "
        "the agent made; you do not run code.\n\nTask:\n{question}\nProposed solution:\n{answer}\nThe agent's "
        "words around it: {around}\nRequirements from the task: {constraints}\n\nChecklist ([x] done, [!] "
        "failed, [~] partial, [ ] pending):\n{checklist}\n\nSummary of earlier attempts: {summary}\nFindings "
        "kept from earlier checks: {found}\n\nTool calls of this attempt:\n{calls}\n\nTool results of this "
        "attempt (newest last):\n{evidence}\n\nRemaining budget: {budget}.\n\nFirst check each requirement "
        "against the test results: satisfied (a passing run of this code shows it), contradicted (a failing "
        "test or an error) or unverifiable (not run). Then decide:\n- SUCCESS: every requirement is satisfied "
        "and the proposed code is the code that passed.\n- CONTINUE (dig deeper): the approach is sound, one "
        "fix or one more run can close the gap, and the remaining budget has the units it needs.\n- PIVOT: the "
        "approach is wrong, the same failure repeated, or too little budget is left for a fix.\nThen write the "
        "justification; a summary of what passed and what failed; the findings worth keeping (a failing input "
        "with its expected and actual output); the next step (CONTINUE) or the new approach (PIVOT); and leave "
        "short_answer empty. Call submit_verdict."
    ),
    select=(
        "Task:\n{question}\n\nCandidate solutions, each with how it was tested:\n{attempts}\n\nFirst reason: "
        "compare which candidates' test runs passed and which failed, and whether each handles the task's edge "
        "cases. Then choose the solution most likely to pass the hidden tests. Call select_answer with your "
        "reason first and then its number."
    ),
    explore_label="Behaviours to implement: ",
    verify_label="Checks a solution must pass (run the tests against these): ",
    fallback_step="Write the function and run it against the visible tests",
    core=False,
)


def wording(style: str) -> Wording:
    """The texts for an answer style: ``code`` gets the programming wording, every other style the research one."""
    return CODE if style == "code" else RESEARCH
