"""BATS's own steps on the core loop: plan (a checklist), verify (SUCCESS / CONTINUE / PIVOT, with the guards)
and select (the best tier of attempts: a vote, or the judge). Every model call goes through the run's meter."""

from __future__ import annotations

from typing import Any, TypeVar

from langgraph.runtime import Runtime
from pydantic import BaseModel

from ...errors import BudgetExceeded, ModelError
from ...meter import MeteredRun
from ...models.messages import Message, ToolSchema
from ...planners.bats import (
    PlanOut,
    Selection,
    Verdict,
    add_steps,
    answer_groups,
    apply_budget_rule,
    best_tier,
    core_answer,
    current,
    decide,
    mark,
    parse_structured,
    rank_attempts,
    render_checklist,
    vote_winner,
)
from ...planners.consistency import stop_verdict
from ..events import VerifierDecision
from ..loop.core import LoopCore
from ..result import StopReason
from ..runtime import emit, user_messages
from .attempts import (
    PLAN_TOOL,
    SELECT_TOOL,
    VERDICT_TOOL,
    Setup,
    budget_text,
    call_text,
    details,
    evidence_only,
    is_answer,
)

__all__ = ["BatsSteps"]

M = TypeVar("M", bound=BaseModel)
_REPLACE_AFTER = 10  # turns since the last replacement before the verifier's summary replaces the trajectory


class BatsSteps:
    """The plan, verify and select steps of one BATS graph, on its core."""

    def __init__(self, core: LoopCore, setup: Setup) -> None:
        self.core = core
        self.setup = setup

    async def structured(
        self,
        run: MeteredRun,
        prompt: str,
        role: str,
        tool: ToolSchema,
        schema: type[M],
        max_out: int,
        use_hold: bool,
    ) -> tuple[M | None, Message | None, BudgetExceeded | None]:
        """One forced ``tool`` call under ``role``; its arguments parsed as ``schema`` (None when they do not fit)."""
        messages = [Message.system(self.setup.system), Message.user(prompt)]
        try:
            response = await run.models.ask(
                messages,
                role=role,
                max_tokens=max_out,
                settings=self.core.settings.settings,
                tool=tool,
                use_hold=use_hold,
            )
        except BudgetExceeded as exc:
            return None, None, exc
        except ModelError as exc:  # an Overrun is not caught: it ends the run (see ``routed``)
            return None, None, BudgetExceeded("model", str(exc), 0, 0)
        out = response.message
        parsed = next((parse_structured(schema, c.arguments) for c in out.tool_calls), None)
        return (parsed if isinstance(parsed, schema) else None), out, None

    def replaces(self, state: Any) -> bool:
        """Whether the summary replaces the trajectory now: at every verdict and plan (``every_verify``), or
        after more than ten turns since the last replacement (the paper)."""
        if self.setup.options.context == "every_verify":
            return True
        return int(state.get("turns", 0)) - int(state.get("summarised_at", 0)) > _REPLACE_AFTER

    # -- plan ------------------------------------------------------------------------------------------
    async def plan_node(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any]:
        run = self.core.run_of(state, runtime)
        question = user_messages(state)[0].content
        context = f"What happened so far: {state['summary']}\n\n" if state.get("summary") else ""
        if state.get("used"):
            context += "Already used (do not repeat): " + "; ".join(state["used"][-12:]) + "\n\n"
        words = self.setup.words
        prompt = words.plan.format(question=question, context=context, budget=budget_text(run.ledger))
        out, msg, refused = await self.structured(
            run, prompt, "plan", PLAN_TOOL, PlanOut, self.setup.answer_tokens, use_hold=False
        )
        if refused is not None or msg is None:
            why = StopReason("budget_exhausted", refused.resource if refused else "", str(refused))
            return self.core.keep(run, {"phase": "answer", "stop": why.info()})
        plan = (
            out
            if out is not None and out.steps
            else PlanOut(steps=[words.fallback_step.replace("{question}", question)])
        )
        checklist = list(state.get("plan") or [])
        attempt_from = len(checklist)  # this attempt's steps start here
        dead = [s["id"].split(".")[0] for s in checklist if s["status"] in ("failed", "partial")]
        checklist = add_steps(checklist, plan.steps[:5], branch_of=dead[-1] if dead else None)
        constraints = (plan.exploration + plan.verification) or list(state.get("constraints") or [])
        clues = (
            {"exploration": plan.exploration, "verification": plan.verification}
            if plan.exploration or plan.verification
            else dict(state.get("clues") or {})
        )
        after = len(state["messages"]) + 1
        update: dict[str, Any] = {
            "plan": checklist,
            "attempt_from": attempt_from,
            "attempt_seg": after,
            "step_from": after,
            "constraints": constraints,
            "clues": clues,
            "phase": "act",
            "messages": [Message.assistant("Plan:\n" + render_checklist(checklist))],
        }
        if self.replaces(state):
            update.update(segment=after, summarised_at=state.get("turns", 0))
        return self.core.keep(run, update)

    # -- verify ----------------------------------------------------------------------------------------
    def attempt_view(self, state: Any) -> tuple[list[str], list[str], str]:
        """The current attempt's tool calls, its tool results (each cut to 600 characters, the last five) and
        the agent's words around its proposed answer: what the verifier judges from."""
        messages = list(state["messages"])
        since = messages[state.get("attempt_seg", state.get("segment", 1)) :]
        calls = [call_text(c.name, c.arguments) for m in since if m.role == "assistant" for c in m.tool_calls]
        results = [m.content.split("\n\n<budget>")[0][:600] for m in since if m.role == "tool"]
        last = next((m for m in reversed(messages) if m.role == "assistant" and not m.tool_calls), None)
        around = " ".join((last.content if last else "").split())[-400:]
        return calls, results[-5:], around

    async def verdict(
        self, run: MeteredRun, state: Any, answer: str, calls: list[str], evidence: list[str], around: str
    ) -> tuple[Verdict, bool]:
        """The verifier's verdict on ``answer`` and whether its call could be paid for; an echoed tool error is a
        failed look-up, not an answer: no verifier call is spent on it."""
        if not is_answer(answer):
            why = "The proposed answer is a tool's error message, not an answer."
            return Verdict(
                decision="PIVOT", justification=why, summary=f"A look-up failed: {answer[:300]}"
            ), True
        prompt = self.setup.words.verify.format(
            question=state["messages"][0].content,
            answer=answer,
            around=around or "(none)",
            constraints="; ".join(state.get("constraints") or []) or "(none listed)",
            checklist=render_checklist(state.get("plan") or []),
            summary=state.get("summary") or "(none: this is the first attempt)",
            found="; ".join(state.get("found") or []) or "(none)",
            calls="\n".join(calls) or "(none)",
            evidence="\n---\n".join(evidence) or "(none)",
            budget=budget_text(run.ledger),
        )
        parsed, msg, _ = await self.structured(
            run, prompt, "verify", VERDICT_TOOL, Verdict, self.setup.verify_tokens, use_hold=True
        )
        return parsed or Verdict(decision="CONTINUE", justification="unparsed verdict"), msg is not None

    def guarded(self, run: MeteredRun, state: Any, verdict: Verdict) -> Verdict:
        """The verdict after the guards: only this attempt's failed look-ups count (``fraction``: the old rule
        over the whole checklist)."""
        checklist = list(state.get("plan") or [])
        failures = sum(1 for s in checklist[state.get("attempt_from", 0) :] if s["status"] == "failed")
        if self.setup.options.rule == "fraction":
            failures = sum(1 for s in checklist if s["status"] == "failed")
            fractions = [f for k in run.ledger.limits if (f := run.ledger.fraction_remaining(k)) is not None]
            return apply_budget_rule(verdict, min(fractions) if fractions else None, failures)
        return decide(verdict, can_correct=bool(run.tools.available()), failures=failures)

    async def verify_node(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any]:
        run = self.core.run_of(state, runtime)
        calls, evidence, around = self.attempt_view(state)
        answer = state.get("proposed") or ""
        own, afforded = await self.verdict(run, state, answer, calls, evidence, around)
        verdict = self.guarded(run, state, own)
        # ranking keeps the verifier's own view unless the evidence overruled it (a contradiction, unchecked SUCCESS)
        overruled = own.decision == "SUCCESS" and verdict.decision != "SUCCESS"
        answer = core_answer(answer, verdict.short_answer) if self.setup.words.core else answer
        attempt = {
            "answer": answer,
            "decision": verdict.decision,
            "verifier": verdict.decision if overruled else own.decision,
            "summary": verdict.summary,
            "calls": calls[-5:],
        }
        attempts = [*(state.get("attempts") or []), attempt]
        emit(runtime, VerifierDecision(answer, verdict.decision, verdict.summary))
        update = self.recorded(state, verdict, attempts, answer)
        return self.core.keep(
            run, {**update, **self.next_step(run, state, verdict, attempts, afforded, update)}
        )

    def recorded(
        self, state: Any, verdict: Verdict, attempts: list[dict[str, Any]], answer: str
    ) -> dict[str, Any]:
        """What the verdict adds to the state: the attempt, its note, the findings, the rolling summary."""
        note = Message.assistant(f"Verifier: {verdict.decision}. {verdict.justification}\n{verdict.summary}")
        found = list(dict.fromkeys([*(state.get("found") or []), *(f[:200] for f in verdict.found)]))[-8:]
        after = len(state["messages"]) + 1
        summary = " ".join(
            x
            for x in (
                state.get("summary", ""),
                verdict.summary,
                f"Next: {verdict.next_step}" if verdict.next_step else "",
            )
            if x
        )
        update: dict[str, Any] = {
            "attempts": attempts,
            "proposed": answer,
            "answer": answer,
            "messages": [note],
            "step_from": after,
            "found": found,
            "verdict": verdict.model_dump(),
            "summary": summary[-1500:],
        }
        if self.replaces(state):
            update.update(segment=after, summarised_at=state.get("turns", 0))
        return update

    def next_step(
        self,
        run: MeteredRun,
        state: Any,
        verdict: Verdict,
        attempts: list[dict[str, Any]],
        afforded: bool,
        update: dict[str, Any],
    ) -> dict[str, Any]:
        """Where the run goes after a verdict: done (SUCCESS, early stop), select (settled, out of tools or
        attempts), act (CONTINUE: dig deeper on this path) or plan (PIVOT: the open steps failed)."""
        options = self.setup.options
        settled = False
        out: dict[str, Any] = {}
        if options.selection == "consistency":  # Adaptive-Consistency: every real answer is one sample
            real = [a for a in attempts if is_answer(a["answer"])]
            rule = stop_verdict(answer_groups(real, self.setup.key)) if real else None
            if rule is not None:
                settled = rule.stop
                out["consistency"] = {
                    "samples": len(real),
                    "confidence": round(rule.confidence, 4),
                    "rule": rule.rule,
                    "stopped": settled,
                }
        elif verdict.decision == "SUCCESS" and options.mode == "early_stop":
            how = details(attempts, len(attempts) - 1, "success")
            return {
                "phase": "done",
                "answer": update["answer"],
                "stop": StopReason("answered").info(),
                "details": how,
            }
        out_of_tools = bool(self.core.settings.tools) and not run.tools.available()
        if settled or out_of_tools or len(attempts) >= self.setup.max_attempts or not afforded:
            return {**out, "phase": "answer"}
        checklist = list(state.get("plan") or [])
        if verdict.decision == "CONTINUE":  # dig deeper: the correction is the next step of this path
            anchor = current(checklist) or (checklist[-1] if checklist else None)
            top = anchor["id"].split(".")[0] if anchor else None
            step = [verdict.next_step or "verify the unverifiable constraint"]
            return {**out, "phase": "act", "plan": add_steps(checklist, step, branch_of=top, first=True)}
        pending = [s["id"] for s in checklist if s["status"] == "pending"]
        for step_id in pending:  # PIVOT (or SUCCESS in full mode): the open steps of this path failed
            checklist = mark(checklist, step_id, "failed")
        if not pending and checklist:  # the path was followed to its end: it only partly worked
            checklist = mark(checklist, checklist[-1]["id"], "partial")
        return {**out, "phase": "plan", "plan": checklist}

    # -- select ----------------------------------------------------------------------------------------
    async def select_node(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any]:
        """C.4: only the best tier of verdicts is compared; a repeated answer wins there by vote, in code; else
        the judge, shown each candidate's calls and summary, reasons and then picks. Consistency selection
        votes over every answer first (the majority wins whatever its verdicts) and falls back to that on a tie."""
        run = self.core.run_of(state, runtime)
        attempts = list(state.get("attempts") or [])
        info = state.get("stop") or StopReason("answered").info()
        if state.get("proposed") and not any(a["answer"] == state["proposed"] for a in attempts):
            attempts.append({"answer": state["proposed"], "decision": "UNVERIFIED", "summary": ""})
        real = [a for a in attempts if is_answer(a["answer"])]
        if not real:  # no attempt, or only echoed tool errors: the final-answer call on the held reserve
            view = {**state, "messages": evidence_only(state["messages"]), "answer": None}
            answered = await self.core.answer(run, view, runtime)
            return self.core.keep(run, {**answered, "details": details(attempts, None, "final_answer")})
        settled = state.get("consistency") if self.setup.options.selection == "consistency" else None
        best, how = await self.pick(run, state, real, settled)
        chosen = real[best]["answer"]
        return self.core.keep(
            run,
            {
                "phase": "done",
                "answer": chosen,
                "stop": info,
                "attempts": attempts,
                "messages": [Message.assistant(f"Selected: {chosen}")],
                "details": details(attempts, attempts.index(real[best]), how, settled),
            },
        )

    async def pick(
        self, run: MeteredRun, state: Any, real: list[dict[str, Any]], settled: Any
    ) -> tuple[int, str]:
        """The chosen attempt among the real answers, and how it was chosen."""
        key = self.setup.key
        tier = best_tier(real)
        majority = vote_winner(real, range(len(real)), key) if settled is not None else None
        if majority is not None:
            return majority, "consistency"
        voted = vote_winner(real, tier, key) if len(tier) > 1 else None
        if voted is not None:
            return voted, "vote"
        best = rank_attempts(real)
        if len({real[i]["answer"] for i in tier}) <= 1:
            return best, "rank"
        listing = "\n".join(
            f"{n}. {real[i]['answer']} (verifier: {real[i].get('verifier', real[i]['decision'])}; "
            f"calls: {'; '.join(real[i].get('calls') or []) or 'none'}; {real[i]['summary'][:400]})"
            for n, i in enumerate(tier, 1)
        )
        prompt = self.setup.words.select.format(question=state["messages"][0].content, attempts=listing)
        pick, _, _ = await self.structured(
            run, prompt, "select", SELECT_TOOL, Selection, self.setup.answer_tokens, use_hold=True
        )
        if pick is not None and 1 <= pick.index <= len(tier):
            return tier[pick.index - 1], "judge"
        return best, "rank"
