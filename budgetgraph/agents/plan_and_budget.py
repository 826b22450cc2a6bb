"""``planner="plan_and_budget"``: split the question into sub-questions with credits, give each a child
ledger with its share (credit x schedule) of what is left, solve them in order, then synthesise the answer.
A sub-question that spends less than its share leaves the rest to the next ones (its child ledger only
charges what was really spent)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..budget.ledger import Ledger
from ..budget.limits import TOOL_PREFIX, Budget
from ..meter import ModelMeter
from ..models.messages import Message
from ..planners.allocation import SubQuestions, fit_subquestions
from ..planners.bats import parse_structured, schema_tool
from .delegating import ask_once, child_shares, hold_synthesis, raise_overrun
from .loop.settings import LoopSettings
from .prompts import extract_answer
from .result import Delegated, SubRunner

__all__ = ["PlanAndBudget"]

_SPLIT_TOOL = schema_tool("submit_subquestions", SubQuestions, "Submit the sub-questions with their credits.")
SPLIT = (
    "Split the question into 2 to 5 sub-questions that are answered one after another (later ones may use "
    "earlier answers; write #1, #2 for them). Give each a credit: how much of the effort it needs, all credits "
    "summing to 100. Do not answer. Question: {question}"
)
SYNTH = (
    "Question: {question}\n\nAnswers to its sub-questions:\n{found}\n\nGive the final answer inside "
    "<answer></answer>, as short as possible."
)


class PlanAndBudget:
    """Runs inside an agent; ``make_agent(budget)`` builds the sub-question solver (a sub-runner)."""

    def __init__(
        self, cfg: LoopSettings, make_agent: Callable[[Budget], SubRunner], schedule: str = "linear"
    ) -> None:
        self.cfg = cfg
        self.make_agent = make_agent
        self.schedule = schedule

    async def _ask(
        self, ledger: Ledger, messages: list[Message], role: str, tool: Any = None
    ) -> Message | None:
        response = await ask_once(
            ModelMeter(self.cfg.model, ledger, self.cfg.prices),
            messages,
            role=role,
            max_tokens=self.cfg.answer_max_tokens,
            settings=self.cfg.settings,
            tool=tool,
        )
        return None if response is None else response.message

    @staticmethod
    def _tool_slots(ledger: Ledger) -> int | None:
        """Calls left of the scarcest capped tool (or of the total tool-call cap); None when none is capped."""
        left = [
            int(ledger.remaining(key) or 0)
            for key in ledger.limits
            if key.startswith(TOOL_PREFIX) or key == "tool_calls"
        ]
        return min(left) if left else None

    async def run(self, question: str, ledger: Ledger) -> tuple[str | None, list[Message], dict[str, Any]]:
        # the synthesis call's reserve: its prompt (the sub-answers) is short, its output the answer bound
        hold_synthesis(self.cfg.model, ledger, self.cfg.prices, self.cfg.answer_max_tokens)
        msg = await self._ask(ledger, [Message.user(SPLIT.format(question=question))], "plan", _SPLIT_TOOL)
        parsed = next(
            (parse_structured(SubQuestions, c.arguments) for c in (msg.tool_calls if msg else ())), None
        )
        subs = parsed.subquestions[:5] if isinstance(parsed, SubQuestions) and parsed.subquestions else []
        subs = fit_subquestions(subs, self._tool_slots(ledger))
        questions = [s.question for s in subs] or [question]
        credits = [s.credit for s in subs] or [100.0]
        transcript: list[Message] = [
            Message.user(question),
            Message.assistant(
                "Sub-questions: "
                + "; ".join(f"{q} (credit {c:g})" for q, c in zip(questions, credits, strict=True))
            ),
        ]
        found: list[str] = []
        plan: list[dict[str, Any]] = []
        for i, q in enumerate(questions):
            share = child_shares(ledger, credits[i:], self.schedule)[0]
            resolved = q
            for j, a in enumerate(found):
                resolved = resolved.replace(f"#{j + 1}", a)
            child = ledger.child(share)
            result = await self.make_agent(share).arun(resolved, ledger=child)
            raise_overrun(result)
            found.append(result.answer or "unknown")
            transcript.extend(result.messages)
            plan.append(
                {
                    "question": resolved,
                    "credit": credits[i],
                    "budget": share.to_dict(),
                    "spent": result.usage.to_dict()["tool_calls"],
                    "answer": result.answer,
                }
            )
        listing = "\n".join(
            f"{i + 1}. {q} -> {a}" for i, (q, a) in enumerate(zip(questions, found, strict=True))
        )
        final = await self._ask(
            ledger, [Message.user(SYNTH.format(question=question, found=listing))], "answer"
        )
        answer = extract_answer(final.content) if final and final.content else (found[-1] if found else None)
        transcript.append(Message.assistant(final.content if final else f"<answer>{answer}</answer>"))
        return answer, transcript, {"subquestions": plan}

    async def delegate(self, question: str, ledger: Ledger) -> Delegated:
        """The delegating graph's work: the answer and the transcript after the question."""
        answer, transcript, _plan = await self.run(question, ledger)
        return Delegated(answer, transcript[1:])
