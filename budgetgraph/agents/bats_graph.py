"""The BATS graph: plan -> act <-> tools -> verify -> (act | plan | select), every call through the ledger.

The verifier's summary replaces the raw trajectory after more than ten turns since the last replacement (the
paper's schedule; ``context="every_verify"`` replaces it at every verdict), ``segment`` marks where the live
context starts, and the queries and documents already used stay listed across every replacement. The
checklist lives in graph state, and the final-answer reserve covers one verifier and one selection call, so
BATS never overshoots a cap.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import Any, TypeVar

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel

from ..budget.block import render_policy
from ..budget.ledger import Ledger
from ..budget.tool_block import render_tool_policy
from ..errors import BudgetExceeded, ModelError
from ..meter import MeteredRun
from ..meter.tool_calls import REFUSALS
from ..models.messages import Message, ModelResponse, ToolSchema
from ..planners.bats import (
    BATSOptions,
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
    schema_tool,
    vote_winner,
)
from ..planners.bats_wording import RESEARCH, Wording
from ..planners.consistency import stop_verdict
from .events import VerifierDecision
from .graph import GO_ON, NO_ANSWER, AgentLoop, LoopConfig, may_go_on, routed
from .need import asks_for_more
from .prompts import extract_answer
from .runtime import RunContext, emit, stop, user_messages
from .state import AgentState

__all__ = ["BATSState", "build_bats_graph"]

M = TypeVar("M", bound=BaseModel)

_PLAN_TOOL = schema_tool("submit_plan", PlanOut, "Submit the plan.")
_VERDICT_TOOL = schema_tool("submit_verdict", Verdict, "Submit the verification verdict.")
_SELECT_TOOL = schema_tool("select_answer", Selection, "Select the best attempt by its number.")
_ECHOED = ("Error:", "No document titled", "(no results)", *REFUSALS)
"""How our tools' failures read: a model that copies one into its answer has no answer."""
_NONE = {"", "none", "unknown", "n/a", "i don't know"}


_STATE_HEADING = "Where you stand:\n\n"  # the run's state after the trajectory (``layout="tail"``)
_REPLACE_AFTER = 10  # turns since the last replacement before the verifier's summary replaces the trajectory


def _failed(message: Message) -> bool:
    """A failed look-up: a tool call that erred or was refused, or one that found nothing (its status)."""
    return message.status in ("error", "refused", "empty")


def _details(
    attempts: list[dict[str, Any]], chosen: int | None, how: str, settled: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The run's details: each attempt's answer and verdicts (the verifier's own and after the guards), and
    which was chosen how (an evaluation counts SUCCESS / CONTINUE / PIVOT and SUCCESS precision from these);
    with consistency selection, the stopping rule's last verdict too."""
    details: dict[str, Any] = {
        "attempts": [
            {"answer": a["answer"], "decision": a["decision"], "verifier": a.get("verifier", a["decision"])}
            for a in attempts
        ],
        "chosen": chosen,
        "selected_by": how,
    }
    if settled is not None:
        details["consistency"] = settled
    return details


def _call_text(name: str, arguments: Any) -> str:
    args = json.dumps(arguments, ensure_ascii=False, default=str)
    return f"{name}({args[:160]})"


def _is_answer(text: str) -> bool:
    """Not an empty or "none" answer, and not a tool error the model echoed back as its answer."""
    clean = text.strip()
    return clean.lower() not in _NONE and not clean.startswith((*_ECHOED, "No information found"))


def evidence_only(messages: list[Message]) -> list[Message]:
    """The question, the tool calls and their results, each failed look-up cut to one line: the final-answer
    context when no attempt was an answer. Plans, verifier notes and echoed errors are left out, as a 1.5B
    model copied them into its final answer."""
    kept = messages[:1]
    for m in messages[1:]:
        if m.tool_calls:
            kept.append(m)
        elif m.role == "tool":
            failed = _failed(m)
            kept.append(Message.tool("(this look-up failed)", m.tool_call_id or "", m.name) if failed else m)
    return kept


class BATSState(AgentState, total=False):
    plan: list[dict[str, Any]]
    constraints: list[str]
    attempts: list[dict[str, Any]]
    summary: str
    segment: int
    proposed: str
    verdict: dict[str, Any]
    attempt_from: int
    """Index in ``plan`` of the current attempt's first step."""
    attempt_seg: int
    """Index in ``messages`` where the current attempt starts (the verifier reads its calls and results)."""
    step_from: int
    """Index in ``messages`` after the last plan or verdict: the next turn must search first."""
    summarised_at: int
    """``turns`` when the trajectory was last replaced by the summary."""
    found: list[str]
    """The verifier's findings, kept across attempts."""
    used: list[str]
    """The tool calls made so far (queries and documents), listed in every context."""
    clues: dict[str, list[str]]
    consistency: dict[str, Any]
    """With consistency selection: the stopping rule's verdict over the answers so far."""


class _BATS(AgentLoop):
    def __init__(
        self,
        cfg: LoopConfig,
        options: BATSOptions,
        system: str | None = None,
        instructions: str | None = None,
        words: Wording = RESEARCH,
        key: Callable[[str], Hashable] | None = None,
    ) -> None:
        super().__init__(cfg)
        self.opts = options
        self.words = words
        self.key = key
        self.max_attempts = options.attempts_cap
        self.bats_system = "\n\n".join(p for p in (system or words.system, instructions) if p)
        self.verify_tokens = max(cfg.answer_max_tokens, 384)

    async def _structured(
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
        messages = [Message.system(self.bats_system), Message.user(prompt)]
        try:
            response = await run.models.ask(
                messages,
                role=role,
                max_tokens=max_out,
                settings=self.cfg.settings,
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

    def _budget_text(self, ledger: Ledger) -> str:
        parts = []
        for key in ledger.limits:
            left = ledger.remaining(key)
            parts.append(f"{key.removeprefix('tool:')} {left} of {ledger.limits[key]} left")
        return ", ".join(parts) or "unlimited"

    def _fraction_left(self, ledger: Ledger) -> float | None:
        fractions = [f for k in ledger.limits if (f := ledger.fraction_remaining(k)) is not None]
        return min(fractions) if fractions else None

    # -- nodes ------------------------------------------------------------------------------------
    async def plan_node(self, state: BATSState, runtime: Runtime[Any]) -> dict[str, Any]:
        run = self.run_of(state, runtime)
        ledger = run.ledger
        question = user_messages(state)[0].content
        context = f"What happened so far: {state['summary']}\n\n" if state.get("summary") else ""
        if state.get("used"):
            context += "Already used (do not repeat): " + "; ".join(state["used"][-12:]) + "\n\n"
        prompt = self.words.plan.format(question=question, context=context, budget=self._budget_text(ledger))
        out, msg, refused = await self._structured(
            run, prompt, "plan", _PLAN_TOOL, PlanOut, self.cfg.answer_max_tokens, use_hold=False
        )
        if refused is not None or msg is None:
            return self.keep(
                run,
                {
                    "phase": "select",
                    "stop": stop("budget_exhausted", refused.resource if refused else "", str(refused)),
                },
            )
        plan = (
            out
            if out is not None and out.steps
            else PlanOut(steps=[self.words.fallback_step.replace("{question}", question)])
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
        note = Message.assistant("Plan:\n" + render_checklist(checklist))
        after = len(state["messages"]) + 1
        update: dict[str, Any] = {
            "plan": checklist,
            "attempt_from": attempt_from,
            "attempt_seg": after,
            "step_from": after,
            "constraints": constraints,
            "clues": clues,
            "phase": "act",
            "messages": [note],
        }
        if self._replaces(state):
            update.update(segment=after, summarised_at=state.get("turns", 0))
        return self.keep(run, update)

    def _replaces(self, state: BATSState) -> bool:
        """Whether the summary replaces the trajectory now: at every verdict and plan (``every_verify``), or
        after more than ten turns since the last replacement (the paper)."""
        if self.opts.context == "every_verify":
            return True
        return state.get("turns", 0) - state.get("summarised_at", 0) > _REPLACE_AFTER

    def _context(self, state: BATSState, ledger: Ledger) -> list[Message]:
        """The acting call's messages: the prompt and policy, the run's state (clues, checklist, summary,
        findings, what was used), the question and the live trajectory. With ``layout="tail"`` the state
        comes last, after the trajectory, so the system message stays the same all run and consecutive
        calls share their prompt prefix (the embedded model's prefix reuse, a provider's prompt cache)."""
        fixed = [self.bats_system]
        if self.cfg.show_budget:
            per_tool = self.cfg.budget_block == "per_tool"
            fixed.append(render_tool_policy() if per_tool else render_policy(self.cfg.regime_policy))
        parts = []
        clues = state.get("clues") or {}
        if clues.get("exploration"):
            parts.append(self.words.explore_label + "; ".join(clues["exploration"]))
        if clues.get("verification"):
            parts.append(self.words.verify_label + "; ".join(clues["verification"]))
        parts.append(
            "Your checklist ([ ] pending, [x] done, [!] failed, [~] partial):\n"
            + render_checklist(state.get("plan") or [])
        )
        if state.get("summary"):
            parts.append("Summary of earlier attempts: " + state["summary"])
        if state.get("found"):
            parts.append("Findings so far: " + "; ".join(state["found"]))
        if state.get("used"):
            parts.append("Already used (do not repeat): " + "; ".join(state["used"][-20:]))
        messages = list(state["messages"])
        live = messages[state.get("segment", 1) :]
        last_call = max((i for i, m in enumerate(live) if m.role == "assistant" and m.tool_calls), default=-1)
        kept = [
            Message.tool("[older result removed; see the checklist]", m.tool_call_id or "", m.name)
            if m.role == "tool" and i < last_call
            else m
            for i, m in enumerate(live)
            if m.role != "assistant" or m.tool_calls  # plan notes and verdicts are summarised, not replayed
        ]
        if self.opts.layout == "tail":
            status = Message.user(_STATE_HEADING + "\n\n".join(parts))
            return [Message.system("\n\n".join(fixed)), messages[0], *kept, status]
        return [Message.system("\n\n".join(fixed + parts)), messages[0], *kept]

    async def act_node(self, state: BATSState, runtime: Runtime[Any]) -> dict[str, Any]:
        run = self.run_of(state, runtime)
        ledger = run.ledger
        user_messages(state)
        turns = state.get("turns", 0)
        tools = run.tools.available()
        if self.opts.stop_on_exhausted and (gone := self.exhausted_cap(run)):
            # the paper stops at the first exhausted tool budget: answer from what the attempts found
            return self.keep(run, {"phase": "select", "stop": stop("budget_exhausted", gone)})
        if turns >= self.cfg.max_turns or (self.cfg.tools and not tools):
            key = self.exhausted_tool(run) if self.cfg.tools and not tools else ""
            return self.keep(
                run, {"phase": "select", "stop": stop("budget_exhausted" if key else "max_turns", key)}
            )
        messages = self._context(state, ledger)
        schemas = [t.schema for t in tools]
        start = state.get("step_from", state.get("segment", 1))
        fresh = not any(m.role == "tool" for m in state["messages"][start:])
        going_on = bool(state.get("go_on")) and state["messages"][-1].role == "user"
        # the answer reserve of the BATS graph: one verifier and one selection call
        response = await self.act(
            run,
            runtime,
            "act",
            messages,
            schemas,
            force=fresh or going_on,
            hold_calls=2,
            hold_output=self.verify_tokens + self.cfg.answer_max_tokens,
        )
        if not isinstance(response, ModelResponse):
            if response.get("kind") in ("error", "overrun") or response.get("resource") == "seconds":
                return self.keep(run, {"phase": "done", "stop": response, "answer": state.get("proposed")})
            return self.keep(run, {"phase": "select", "stop": response})
        message = response.message
        update: dict[str, Any] = {"messages": [message], "turns": turns + 1}
        needs_more = False
        if self.cfg.budget_stop and (judged := self.judge_need(run, message, turns)) is not None:
            record, why = judged
            update["estimates"] = [record]
            if why is not None:  # the agent's estimate ends the search: select from the attempts so far
                update["messages"] = [replace(message, tool_calls=())]
                return self.keep(run, {**update, "phase": "select", "stop": stop("stopped_early", "", why)})
            needs_more = asks_for_more(record["need"])
        if message.tool_calls:
            used = [_call_text(c.name, c.arguments) for c in message.tool_calls]
            update["go_on"] = False
            return self.keep(run, {**update, "phase": "tools", "used": [*(state.get("used") or []), *used]})
        proposed = extract_answer(message.content)
        if needs_more and not proposed and tools and may_go_on(state["messages"]):
            # only an estimate of calls still needed, and they fit: the next turn makes one
            went = {"messages": [message, Message.user(GO_ON)], "go_on": True}
            return self.keep(run, {**update, **went, "phase": "act"})
        if not proposed:  # e.g. a tool call cut off at max_tokens: no answer to verify, as in the react loop
            return self.keep(run, {**update, "phase": "select", "stop": stop("answered", "", NO_ANSWER)})
        return self.keep(run, {**update, "phase": "verify", "proposed": proposed})

    async def bats_tools_node(self, state: BATSState, runtime: Runtime[Any]) -> dict[str, Any]:
        """Admit (and, without a checkpointer, run) the calls; a durable graph runs them in ``run_tools``."""
        run = self.run_of(state, runtime)
        before = dict(run.ledger.usage().tool_calls)
        update = await self.tools_node(state, runtime)
        return update if self.cfg.durable else self._mark(state, run, before, update)

    async def bats_run_tools_node(self, state: BATSState, runtime: Runtime[Any]) -> dict[str, Any]:
        run = self.run_of(state, runtime)
        before = dict(run.ledger.usage().tool_calls)  # the admitted calls are reserved, not yet spent
        return self._mark(state, run, before, await self.run_tools_node(state, runtime))

    def _mark(
        self, state: BATSState, run: MeteredRun, before: dict[str, int], update: dict[str, Any]
    ) -> dict[str, Any]:
        """Mark the current checklist step done or failed with the units its calls spent."""
        after = run.ledger.usage().tool_calls
        spent = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
        checklist = list(state.get("plan") or [])
        step = current(checklist)
        if step is not None:
            ok = any(not _failed(m) for m in update["messages"])
            checklist = mark(checklist, step["id"], "done" if ok else "failed", spent)
        update["plan"] = checklist
        if update.get("phase") == "answer":
            update["phase"] = "select"
        return update

    def _attempt_view(self, state: BATSState) -> tuple[list[str], list[str], str]:
        """The current attempt's tool calls, its tool results (each cut to 600 characters, the last five) and
        the agent's words around its proposed answer: what the verifier judges from."""
        messages = list(state["messages"])
        since = messages[state.get("attempt_seg", state.get("segment", 1)) :]
        calls = [
            _call_text(c.name, c.arguments) for m in since if m.role == "assistant" for c in m.tool_calls
        ]
        results = [m.content.split("\n\n<budget>")[0][:600] for m in since if m.role == "tool"]
        last = next((m for m in reversed(messages) if m.role == "assistant" and not m.tool_calls), None)
        around = " ".join((last.content if last else "").split())[-400:]
        return calls, results[-5:], around

    async def verify_node(self, state: BATSState, runtime: Runtime[Any]) -> dict[str, Any]:
        run = self.run_of(state, runtime)
        ledger = run.ledger
        question = state["messages"][0].content
        answer = state.get("proposed") or ""
        calls, evidence, around = self._attempt_view(state)
        prompt = self.words.verify.format(
            question=question,
            answer=answer,
            around=around or "(none)",
            constraints="; ".join(state.get("constraints") or []) or "(none listed)",
            checklist=render_checklist(state.get("plan") or []),
            summary=state.get("summary") or "(none: this is the first attempt)",
            found="; ".join(state.get("found") or []) or "(none)",
            calls="\n".join(calls) or "(none)",
            evidence="\n---\n".join(evidence) or "(none)",
            budget=self._budget_text(ledger),
        )
        afforded = True
        if _is_answer(answer):
            parsed, msg, _refused = await self._structured(
                run, prompt, "verify", _VERDICT_TOOL, Verdict, self.verify_tokens, use_hold=True
            )
            afforded = msg is not None
            verdict = parsed or Verdict(decision="CONTINUE", justification="unparsed verdict")
        else:  # an echoed tool error is a failed look-up, not an answer: no verifier call is spent on it
            verdict = Verdict(
                decision="PIVOT",
                justification="The proposed answer is a tool's error message, not an answer.",
                summary=f"A look-up failed: {answer[:300]}",
            )
        own = verdict.decision
        checklist = list(state.get("plan") or [])
        # only this attempt's failed look-ups count: a PIVOT marks the abandoned path's open steps failed
        failures = sum(1 for s in checklist[state.get("attempt_from", 0) :] if s["status"] == "failed")
        if self.opts.rule == "fraction":  # our earlier rule, kept to compare: failures over all the checklist
            failures = sum(1 for s in checklist if s["status"] == "failed")
            verdict = apply_budget_rule(verdict, self._fraction_left(ledger), failures)
        else:
            verdict = decide(verdict, can_correct=bool(run.tools.available()), failures=failures)
        # ranking keeps the verifier's own view unless the evidence overruled it (a contradiction, unchecked SUCCESS)
        evidence_overruled = own == "SUCCESS" and verdict.decision != "SUCCESS"
        answer = core_answer(answer, verdict.short_answer) if self.words.core else answer
        attempts = [
            *(state.get("attempts") or []),
            {
                "answer": answer,
                "decision": verdict.decision,
                "verifier": verdict.decision if evidence_overruled else own,
                "summary": verdict.summary,
                "calls": calls[-5:],
            },
        ]
        note = Message.assistant(f"Verifier: {verdict.decision}. {verdict.justification}\n{verdict.summary}")
        emit(runtime, VerifierDecision(answer, verdict.decision, verdict.summary))
        found = list(dict.fromkeys([*(state.get("found") or []), *(f[:200] for f in verdict.found)]))[-8:]
        after = len(state["messages"]) + 1
        update: dict[str, Any] = {
            "attempts": attempts,
            "proposed": answer,
            "messages": [note],
            "step_from": after,
            "found": found,
            "verdict": verdict.model_dump(),
        }
        if self._replaces(state):
            update.update(segment=after, summarised_at=state.get("turns", 0))
        summary = " ".join(
            x
            for x in (
                state.get("summary", ""),
                verdict.summary,
                f"Next: {verdict.next_step}" if verdict.next_step else "",
            )
            if x
        )
        update["summary"] = summary[-1500:]
        out_of_tools = bool(self.cfg.tools) and not run.tools.available()
        settled = False
        if self.opts.selection == "consistency":  # Adaptive-Consistency: every real answer is one sample
            real = [a for a in attempts if _is_answer(a["answer"])]
            rule = stop_verdict(answer_groups(real, self.key)) if real else None
            if rule is not None:
                settled = rule.stop
                update["consistency"] = {
                    "samples": len(real),
                    "confidence": round(rule.confidence, 4),
                    "rule": rule.rule,
                    "stopped": settled,
                }
        elif verdict.decision == "SUCCESS" and self.opts.mode == "early_stop":
            details = _details(attempts, len(attempts) - 1, "success")
            return self.keep(
                run,
                {**update, "phase": "done", "answer": answer, "stop": stop("answered"), "details": details},
            )
        if settled or out_of_tools or len(attempts) >= self.max_attempts or not afforded:
            return self.keep(run, {**update, "phase": "select"})
        if verdict.decision == "CONTINUE":  # dig deeper: the correction is the next step of this path
            anchor = current(checklist) or (checklist[-1] if checklist else None)
            top = anchor["id"].split(".")[0] if anchor else None
            update["plan"] = add_steps(
                checklist,
                [verdict.next_step or "verify the unverifiable constraint"],
                branch_of=top,
                first=True,
            )
            return self.keep(run, {**update, "phase": "act"})
        pending = [s["id"] for s in checklist if s["status"] == "pending"]
        for step_id in pending:  # PIVOT (or SUCCESS in full mode): the open steps of this path failed
            checklist = mark(checklist, step_id, "failed")
        if not pending and checklist:  # the path was followed to its end: it only partly worked
            checklist = mark(checklist, checklist[-1]["id"], "partial")
        update["plan"] = checklist
        return self.keep(run, {**update, "phase": "plan"})

    async def select_node(self, state: BATSState, runtime: Runtime[Any]) -> dict[str, Any]:
        """C.4: only the best tier of verdicts is compared; a repeated answer wins there by vote, in code; else
        the judge, shown each candidate's calls and summary, reasons and then picks. Consistency selection
        votes over every answer first (the majority wins whatever its verdicts) and falls back to that on a
        tie."""
        run = self.run_of(state, runtime)
        attempts = list(state.get("attempts") or [])
        info = state.get("stop") or stop("answered")
        if state.get("proposed") and not any(a["answer"] == state["proposed"] for a in attempts):
            attempts.append({"answer": state["proposed"], "decision": "UNVERIFIED", "summary": ""})
        real = [a for a in attempts if _is_answer(a["answer"])]
        if not real:  # no attempt, or only echoed tool errors: the final-answer call on the held reserve
            view: BATSState = {**state, "messages": evidence_only(state["messages"])}
            return {
                **await self.answer_node(view, runtime),
                "details": _details(attempts, None, "final_answer"),
            }
        settled = state.get("consistency") if self.opts.selection == "consistency" else None
        tier = best_tier(real)
        best = rank_attempts(real)
        how = "rank"
        majority = vote_winner(real, range(len(real)), self.key) if settled is not None else None
        voted = vote_winner(real, tier, self.key) if len(tier) > 1 else None
        if majority is not None:
            best, how = majority, "consistency"
        elif voted is not None:
            best, how = voted, "vote"
        elif len({real[i]["answer"] for i in tier}) > 1:
            listing = "\n".join(
                f"{n}. {real[i]['answer']} (verifier: {real[i].get('verifier', real[i]['decision'])}; "
                f"calls: {'; '.join(real[i].get('calls') or []) or 'none'}; {real[i]['summary'][:400]})"
                for n, i in enumerate(tier, 1)
            )
            prompt = self.words.select.format(question=state["messages"][0].content, attempts=listing)
            pick, _, _ = await self._structured(
                run, prompt, "select", _SELECT_TOOL, Selection, self.cfg.answer_max_tokens, use_hold=True
            )
            if pick is not None and 1 <= pick.index <= len(tier):
                best, how = tier[pick.index - 1], "judge"
        return self.keep(
            run,
            {
                "phase": "done",
                "answer": real[best]["answer"],
                "stop": info,
                "attempts": attempts,
                "messages": [Message.assistant(f"Selected: {real[best]['answer']}")],
                "details": _details(attempts, attempts.index(real[best]), how, settled),
            },
        )


_NEXT = {
    "act": "act",
    "tools": "tools",
    "run_tools": "run_tools",
    "verify": "verify",
    "plan": "plan",
    "select": "select",
    "answer": "select",
    "pause": "pause",
}


def build_bats_graph(
    cfg: LoopConfig,
    options: BATSOptions | None = None,
    *,
    system: str | None = None,
    instructions: str | None = None,
    words: Wording = RESEARCH,
    key: Callable[[str], Hashable] | None = None,
) -> StateGraph[BATSState, RunContext]:
    """The BATS graph steered by ``options`` (the defaults when None); ``system`` replaces the research-agent
    prompt and ``instructions`` are appended, as for the loop; ``words`` are the prompt texts for the kind of
    task (``bats_wording.CODE`` for code); ``key`` groups answers for the votes (by behaviour, for code; by
    their words when None)."""
    loop = _BATS(cfg, options or BATSOptions(), system, instructions, words, key)
    graph: StateGraph[BATSState, RunContext] = StateGraph(BATSState, context_schema=RunContext)
    out = ("select", "pause", END) if cfg.pause_on_exhausted else ("select", END)
    graph.add_node("plan", routed(loop.plan_node, _NEXT, loop), destinations=("act", *out))
    graph.add_node("act", routed(loop.act_node, _NEXT, loop), destinations=("tools", "verify", *out))
    after_tools = ("run_tools",) if cfg.durable else ("act",)
    graph.add_node("tools", routed(loop.bats_tools_node, _NEXT, loop), destinations=(*after_tools, *out))
    if cfg.durable:  # what is in flight is checkpointed before it runs (at most once across a crash)
        graph.add_node("run_tools", routed(loop.bats_run_tools_node, _NEXT, loop), destinations=("act", *out))
    graph.add_node("verify", routed(loop.verify_node, _NEXT, loop), destinations=("act", "plan", *out))
    graph.add_node("select", routed(loop.select_node, _NEXT, loop), destinations=(END,))
    if cfg.pause_on_exhausted:  # a grant goes on acting; a decline goes to the answer selection
        graph.add_node("pause", routed(loop.pause_node, _NEXT, loop), destinations=("act", "select", END))
    graph.add_edge(START, "plan")
    return graph
