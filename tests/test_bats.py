"""BATS control flow with a scripted model: verifier decisions, context replacement,
selection, exact per-role accounting and caps that hold."""

from __future__ import annotations

import asyncio

import pytest
from conftest import check_ledger

from budgetgraph import Agent, AgentOptions, BATSOptions, Budget, Ledger, tool
from budgetgraph.agents.bats import evidence_only
from budgetgraph.models import ScriptedModel
from budgetgraph.models.messages import Message, ToolCall
from budgetgraph.planners.bats import (
    ConstraintCheck,
    PlanOut,
    Selection,
    Verdict,
    add_steps,
    apply_budget_rule,
    best_tier,
    core_answer,
    current,
    decide,
    mark,
    rank_attempts,
    render_checklist,
    vote_winner,
)


def _driver(
    decisions,
    answers=("Alpha", "Beta", "Gamma"),
    pick=1,
    final="Final",
    short="",
    checks=None,
    steps=None,
    found=(),
):
    """Plan, act (search, open the first hit, answer), verify with the given decisions, select ``pick``;
    ``final`` answers a call made without tools (the final-answer call). A SUCCESS verdict checks its one
    constraint satisfied, any other leaves it unverifiable (``checks`` replaces them)."""
    state = {"verdicts": list(decisions), "attempt": 0, "answered": 0, "step": 0}

    def policy(messages, tools):
        names = [t.name for t in tools]
        if names in (["submit_plan"], ["submit_verdict"]):
            state["step"] = 0  # each plan or verdict starts a new search -> open -> answer round
        if names == ["submit_plan"]:
            return ScriptedModel.tool_calls(
                [
                    (
                        "submit_plan",
                        {
                            "exploration": ["remote"],
                            "verification": ["designer"],
                            "steps": steps or ["search the remote", "open its page"],
                        },
                    )
                ]
            )
        if names == ["submit_verdict"]:
            decision = state["verdicts"].pop(0) if state["verdicts"] else "PIVOT"
            n = state["attempt"]
            state["attempt"] += 1
            return ScriptedModel.tool_calls(
                [
                    (
                        "submit_verdict",
                        {
                            "checks": checks
                            if checks is not None
                            else [
                                {
                                    "constraint": "designer",
                                    "status": "satisfied" if decision == "SUCCESS" else "unverifiable",
                                }
                            ],
                            "decision": decision,
                            "justification": "j",
                            "summary": f"SUMMARY-{n}",
                            "next_step": f"NEXT-{n}",
                            "short_answer": short,
                            "found": [f"{f}-{n}" for f in found],
                        },
                    )
                ]
            )
        if names == ["select_answer"]:
            return ScriptedModel.tool_calls([("select_answer", {"index": pick, "reason": "r"})])
        if not names:
            return ScriptedModel.text(f"<answer>{final}</answer>")
        state["step"] += 1
        if state["step"] == 1:
            return ScriptedModel.tool_calls([("search", {"queries": ["Apple Remote"]})])
        if state["step"] == 2:
            return ScriptedModel.tool_calls([("open", {"title": "Apple Remote"})])
        state["answered"] += 1
        reply = answers[min(state["answered"], len(answers)) - 1]
        return ScriptedModel.text(reply if reply.startswith("<tool_call>") else f"<answer>{reply}</answer>")

    return ScriptedModel(policy)


def _run(model, budget, mini_corpus, **kw):
    """A BATS run on the mini corpus; BATSOptions fields in ``kw`` (mode, max_attempts, ...) become its options."""
    from budgetgraph.agents.options import option_names

    steering = {k: kw.pop(k) for k in list(kw) if k in option_names(BATSOptions)}
    if steering:
        kw["options"] = BATSOptions(**steering)
    agent = Agent(model, mini_corpus.tools(), budget, planner="bats", **kw)
    return agent, asyncio.run(agent.arun("Who designed the Apple Remote?"))


def _requests(model, tool):
    return [msgs for msgs, tools, _ in model.requests if [t.name for t in tools] == [tool]]


def _act_requests(model):
    return [msgs for msgs, tools, _ in model.requests if "search" in [t.name for t in tools]]


def test_success_in_early_stop_mode_ends_the_run(mini_corpus):
    model = _driver(["SUCCESS"])
    _, result = _run(model, Budget(tool_calls={"search": 5, "open": 5}), mini_corpus)
    assert result.answer == "Alpha" and str(result.stop_reason) == "answered"
    assert result.details == {
        "attempts": [{"answer": "Alpha", "decision": "SUCCESS", "verifier": "SUCCESS"}],
        "chosen": 0,
        "selected_by": "success",
    }
    assert (
        set(result.usage.by_role) == {"plan", "act", "verify"}
        and result.usage.by_role["verify"]["llm_calls"] == 1
    )
    check_ledger(result)


def test_pivot_replans_and_the_new_context_holds_the_summary_not_the_old_results(mini_corpus):
    model = _driver(["PIVOT", "SUCCESS"])
    _, result = _run(model, Budget(tool_calls={"search": 5, "open": 5}), mini_corpus, context="every_verify")
    assert result.answer == "Beta" and len(_requests(model, "submit_plan")) == 2
    acts = _act_requests(model)
    first_search_result = next(m.content for m in model.requests[2][0] if m.role == "tool")
    after_pivot = [msgs for msgs in acts if "SUMMARY-0" in msgs[0].content]
    assert after_pivot, "the act context after PIVOT must carry the verifier's summary"
    fresh = after_pivot[0]
    assert not any(m.role == "tool" for m in fresh), "old tool results must be gone after PIVOT"
    assert all(first_search_result not in m.content for m in fresh)
    plan_text = next(
        m.content for m in result.messages if m.content.startswith("Plan:") and "[~]" in m.content
    )
    assert "1.1." in plan_text or "2.1." in plan_text  # alternatives are numbered branches; nothing deleted
    check_ledger(result)


def test_continue_keeps_the_plan_and_digs(mini_corpus):
    model = _driver(["CONTINUE", "SUCCESS"])
    _, result = _run(model, Budget(tool_calls={"search": 6, "open": 6}), mini_corpus)
    assert len(_requests(model, "submit_plan")) == 1  # no re-plan on CONTINUE
    after = [msgs for msgs in _act_requests(model) if "SUMMARY-0" in msgs[0].content]
    assert after and "NEXT-0" in after[0][0].content  # the dig-deeper step is now on the checklist
    assert result.answer == "Beta"
    check_ledger(result)


def test_continue_with_too_little_budget_becomes_pivot():
    v = Verdict(decision="CONTINUE", summary="s")
    assert apply_budget_rule(v, 0.2, 0).decision == "PIVOT"
    assert apply_budget_rule(v, 0.8, 0).decision == "CONTINUE"
    assert apply_budget_rule(v, 0.8, 2).decision == "PIVOT"


def test_exhaustion_leads_to_selection_and_never_to_none(mini_corpus):
    model = _driver(["CONTINUE", "CONTINUE", "CONTINUE"], answers=("Alpha", "Beta", "Gamma"), pick=2)
    _, result = _run(model, Budget(tool_calls={"search": 3, "open": 3}), mini_corpus, stop_on_exhausted=True)
    assert str(result.stop_reason) == "budget_exhausted: search"
    assert "select" in result.usage.by_role and result.answer == "Beta"  # two attempts, the judge picked #2
    # the paper stops at the first exhausted tool budget (by name): search ran out with one open left
    assert result.usage.tool_calls == {"search": 3, "open": 2}
    check_ledger(result)
    model = _driver(["CONTINUE", "CONTINUE", "CONTINUE"], answers=("Alpha", "Beta", "Gamma"), pick=2)
    _, result = _run(model, Budget(tool_calls={"search": 3, "open": 3}), mini_corpus)
    assert result.usage.tool_calls == {
        "search": 3,
        "open": 3,
    }  # by default, until every tool is spent


def test_the_first_exhausted_tool_stops_a_bats_run_when_named(mini_corpus):
    model = _driver(["SUCCESS"])
    _, result = _run(model, Budget(tool_calls={"search": 1, "open": 5}), mini_corpus, stop_on_exhausted=True)
    assert str(result.stop_reason) == "budget_exhausted: search"
    assert result.usage.tool_calls == {"search": 1} and "verify" not in result.usage.by_role
    model = _driver(["SUCCESS"])
    _, result = _run(model, Budget(tool_calls={"search": 1, "open": 5}), mini_corpus)
    assert result.usage.tool_calls == {"search": 1, "open": 1} and result.answer == "Alpha"


def _verifier_notes(result):
    return [m.content for m in result.messages if m.content.startswith("Verifier:")]


def test_continue_after_a_pivot_is_honoured_when_the_budget_allows(mini_corpus):
    # four planned steps: the PIVOT leaves two open, which it marks failed; they are the old path's, not this one's
    steps = ["search the remote", "open its page", "check the maker", "check the year"]
    model = _driver(["PIVOT", "CONTINUE", "SUCCESS"], steps=steps)
    _, result = _run(model, Budget(tool_calls={"search": 8, "open": 8}), mini_corpus)
    notes = _verifier_notes(result)
    assert notes[0].startswith("Verifier: PIVOT") and notes[1].startswith("Verifier: CONTINUE")
    assert "->" not in notes[1]  # not demoted
    assert len(_requests(model, "submit_plan")) == 2  # the CONTINUE digs on; it does not re-plan
    model = _driver(["PIVOT", "CONTINUE", "SUCCESS"], steps=steps)
    _, old = _run(model, Budget(tool_calls={"search": 8, "open": 8}), mini_corpus, rule="fraction")
    assert "CONTINUE -> PIVOT" in _verifier_notes(old)[1]  # what the whole-checklist count did


def test_success_needs_every_check_satisfied():
    base = Verdict(decision="SUCCESS", summary="s")
    assert decide(base, can_correct=True, failures=0).decision == "CONTINUE"  # no checks at all
    open_check = base.model_copy(update={"checks": [ConstraintCheck(constraint="c", status="unverifiable")]})
    assert decide(open_check, can_correct=True, failures=0).decision == "CONTINUE"
    bad = base.model_copy(update={"checks": [ConstraintCheck(constraint="c", status="contradicted")]})
    assert decide(bad, can_correct=True, failures=0).decision == "PIVOT"
    good = base.model_copy(update={"checks": [ConstraintCheck(constraint="c", status="satisfied")]})
    assert decide(good, can_correct=False, failures=3).decision == "SUCCESS"
    dig = Verdict(decision="CONTINUE")
    assert decide(dig, can_correct=True, failures=1).decision == "CONTINUE"
    assert decide(dig, can_correct=False, failures=0).decision == "PIVOT"
    assert decide(dig, can_correct=True, failures=2).decision == "PIVOT"


def test_success_with_empty_checks_is_refused_in_a_run(mini_corpus):
    model = _driver(["SUCCESS", "SUCCESS"], checks=[])
    _, result = _run(model, Budget(tool_calls={"search": 6, "open": 6}), mini_corpus)
    notes = _verifier_notes(result)
    assert "SUCCESS -> CONTINUE" in notes[0] and len(notes) >= 2


def test_a_demoted_answer_keeps_its_verdict_in_ranking():
    attempts = [
        {"answer": "Alpha", "decision": "PIVOT", "verifier": "CONTINUE"},  # demoted for lack of budget
        {"answer": "Beta", "decision": "PIVOT", "verifier": "PIVOT"},
    ]
    assert rank_attempts(attempts) == 0
    assert rank_attempts([{"answer": "A", "decision": "PIVOT"}, {"answer": "B", "decision": "PIVOT"}]) == 1


def test_full_mode_keeps_attempting_after_success_then_selects(mini_corpus):
    model = _driver(["SUCCESS", "SUCCESS", "SUCCESS"], pick=3)
    _, result = _run(
        model, Budget(tool_calls={"search": 9, "open": 9}), mini_corpus, mode="full", max_attempts=3
    )
    assert len(_requests(model, "submit_verdict")) == 3 and result.answer == "Gamma"
    check_ledger(result)


def test_token_caps_hold_with_the_verifier_and_selection_reserve(mini_corpus):
    for cap in (1500, 3000, 6000):
        model = _driver(["CONTINUE"] * 5)
        _, result = _run(
            model, Budget(tool_calls={"search": 9, "open": 9}, total_tokens=cap, llm_calls=8), mini_corpus
        )
        assert result.usage.total_tokens <= cap and result.usage.llm_calls <= 8
        check_ledger(result)


def test_checklist_operations():
    plan = add_steps([], ["a", "b"])
    plan = mark(plan, "1", "failed", {"search": 2})
    plan = add_steps(plan, ["a again"], branch_of="1")
    assert [s["id"] for s in plan] == ["1", "2", "1.1"]
    text = render_checklist(plan)
    assert "[!] 1. a (search=2)" in text and "  [ ] 1.1. a again" in text


def test_structured_outputs_from_small_models_are_read_leniently():
    from budgetgraph.planners.bats import parse_structured

    plan = parse_structured(
        PlanOut, {"steps": [{"step": 1, "action": "search the remote"}, "open it"], "exploration": "remote"}
    )
    assert (
        plan is not None
        and plan.steps == ["1 search the remote", "open it"]
        and plan.exploration == ["remote"]
    )
    verdict = parse_structured(
        Verdict,
        {"decision": "pivot.", "checks": ["designer known", {"constraint": "year", "status": "Satisfied"}]},
    )
    assert verdict is not None and verdict.decision == "PIVOT"
    assert [(c.constraint, c.status) for c in verdict.checks] == [
        ("designer known", "unverifiable"),
        ("year", "satisfied"),
    ]


def test_selection_never_picks_an_echoed_tool_error_when_a_real_answer_exists(mini_corpus):
    model = _driver(
        ["PIVOT", "PIVOT"], answers=("No document titled 'X'. Closest titles: Y", "Steve Jobs", "z")
    )
    _, result = _run(model, Budget(tool_calls={"search": 4, "open": 4}), mini_corpus, max_attempts=2)
    assert result.answer == "Steve Jobs"


def test_when_every_attempt_echoes_a_tool_error_the_final_answer_call_answers(mini_corpus):
    echo = "No document titled 'X'. Closest titles: Y"
    model = _driver(["PIVOT", "PIVOT"], answers=(echo, "Error: bad title"), final="Jony Ive")
    _, result = _run(model, Budget(tool_calls={"search": 4, "open": 4}), mini_corpus, max_attempts=2)
    assert result.answer == "Jony Ive"
    assert result.usage.by_role["answer"]["llm_calls"] == 1
    check_ledger(result)
    final_prompt = next(msgs for msgs, tools, _ in model.requests if not tools)
    texts = " ".join(m.content for m in final_prompt)
    assert "No document titled" not in texts and "Error: bad title" not in texts  # nothing to copy
    assert any(m.role == "tool" and "Apple Remote" in m.content for m in final_prompt)  # the evidence stays


def test_the_final_answer_context_keeps_evidence_and_cuts_failed_look_ups():
    call = ToolCall(id="c1", name="open", arguments={"title": "X"})
    messages = [
        Message.user("Who designed the Apple Remote?"),
        Message.assistant("Plan:\n[ ] 1. search"),
        Message.assistant("", tool_calls=[call]),
        Message.tool("No document titled 'X'. Closest titles: Y", "c1", "open", "empty"),
        Message.tool("# Apple Remote\nDesigned by Jony Ive.", "c2", "open", "ok"),
        Message.assistant("<answer>No document titled 'X'.</answer>"),
        Message.assistant("Verifier: PIVOT. ..."),
    ]
    kept = evidence_only(messages)
    assert [m.role for m in kept] == ["user", "assistant", "tool", "tool"]
    assert kept[1].tool_calls == (call,)
    assert kept[2].content == "(this look-up failed)" and kept[2].tool_call_id == "c1"
    assert "Jony Ive" in kept[3].content


def test_a_tool_call_cut_off_at_max_tokens_is_not_an_answer(mini_corpus):
    cut = '<tool_call>\n{"name": "search", "arguments": {"queries": ["remote", "remote", "remote'
    model = _driver(["SUCCESS"], answers=(cut,), final="Jony Ive")
    _, result = _run(model, Budget(tool_calls={"search": 4, "open": 4}), mini_corpus)
    assert result.answer == "Jony Ive"
    assert "verify" not in result.usage.by_role and result.usage.by_role["answer"]["llm_calls"] == 1
    check_ledger(result)
    model = _driver(["PIVOT"], answers=("Steve Jobs", cut), final="unused")
    _, result = _run(model, Budget(tool_calls={"search": 4, "open": 4}), mini_corpus, max_attempts=3)
    assert result.answer == "Steve Jobs"  # the verified attempt stands; the cut-off call is not an attempt


def test_an_echoed_tool_error_is_a_pivot_without_a_verifier_call(mini_corpus):
    echo = "No document titled 'X'. Closest titles: Apple Remote"
    model = _driver(["SUCCESS"], answers=(echo, "Jony Ive"))
    _, result = _run(model, Budget(tool_calls={"search": 4, "open": 4}), mini_corpus, max_attempts=3)
    assert result.answer == "Jony Ive"
    assert result.usage.by_role["verify"]["llm_calls"] == 1
    check_ledger(result)


@pytest.mark.parametrize(
    ("proposed", "short", "kept"),
    [
        ("Eucryphia has more species than Lepidozamia.", "Eucryphia", "Eucryphia"),
        ("Yes, both are American.", "yes", "yes"),
        (
            "The film LaLee's Kin: The Legacy of Cotton, is it.",
            "LaLee's Kin: The Legacy of Cotton",
            "LaLee's Kin: The Legacy of Cotton",
        ),
        ("Polypodium has more species.", "Aichryson", None),  # not a part of the proposal: no replacement
        ("Polypodium", "", None),
        ("Sanford Airport", "Sanford", "Sanford"),
        ("Sanfordville", "Sanford", None),  # whole words only
    ],
)
def test_the_verifier_can_shorten_an_answer_but_not_replace_it(proposed, short, kept):
    assert core_answer(proposed, short) == (kept or proposed)


def test_a_sentence_answer_is_cut_to_the_verifiers_short_form(mini_corpus):
    model = _driver(["SUCCESS"], answers=("Jony Ive designed the Apple Remote.",), short="Jony Ive")
    _, result = _run(model, Budget(tool_calls={"search": 4, "open": 4}), mini_corpus)
    assert result.answer == "Jony Ive"
    model = _driver(["SUCCESS"], answers=("Jony Ive designed the Apple Remote.",), short="Steve Jobs")
    _, result = _run(model, Budget(tool_calls={"search": 4, "open": 4}), mini_corpus)
    assert result.answer == "Jony Ive designed the Apple Remote."


def test_react_nudge_sends_an_early_answer_back_to_the_tools(mini_corpus):
    from budgetgraph.agents.nudge import NUDGE

    state = {"n": 0}

    def policy(messages, tools):
        state["n"] += 1
        nudges = sum(1 for m in messages if m.role == "user" and m.content == NUDGE)
        if tools and nudges == 1 and not any(m.role == "tool" for m in messages):
            return ScriptedModel.tool_calls([("search", {"queries": ["Apple Remote"]})])
        return ScriptedModel.text(f"<answer>guess {nudges}</answer>")

    model = ScriptedModel(policy)
    result = Agent(
        model, mini_corpus.tools(), Budget(tool_calls={"search": 3, "open": 3}), planner="react_nudge"
    ).run("q")
    texts = [m.content for m in result.messages]
    assert texts.count(NUDGE) == 5  # the first answer, and four in a row after the search: the fifth stops it
    assert result.answer == "guess 5" and result.usage.tool_calls == {"search": 1}
    after_nudge = [settings for msgs, _, settings in model.requests if msgs[-1].content == NUDGE]
    assert len(after_nudge) == 5 and all(s.get("tool_choice") == "required" for s in after_nudge)
    plain = Agent(ScriptedModel(policy), mini_corpus.tools(), "search=3,open=3", planner="react").run("q")
    assert plain.answer == "guess 0"  # react takes the first answer
    spent = Agent(ScriptedModel(policy), mini_corpus.tools(), "search=0,open=0", planner="react_nudge").run(
        "q"
    )
    assert NUDGE not in [m.content for m in spent.messages]  # no budget left: nothing to nudge towards


def _verify_prompts(model):
    return [msgs[-1].content for msgs in _requests(model, "submit_verdict")]


def test_the_verifier_sees_the_attempts_calls_checklist_summary_and_kept_findings(mini_corpus):
    model = _driver(["CONTINUE", "SUCCESS"], found=("FACT",))
    _run(model, Budget(tool_calls={"search": 6, "open": 6}), mini_corpus)
    first, second = _verify_prompts(model)
    assert 'search({"queries": ["Apple Remote"]})' in first and 'open({"title": "Apple Remote"})' in first
    assert "[x] 1. search the remote" in first  # the checklist with its marks
    assert "Proposed answer: Alpha" in first and "first attempt" in first
    # after CONTINUE: the earlier summary and findings, and the whole attempt's calls (4, not the last 2)
    assert "SUMMARY-0" in second and "FACT-0" in second
    assert second.count('search({"queries": ["Apple Remote"]})') == 2


def test_the_paper_schedule_keeps_the_trajectory_until_ten_turns(mini_corpus):
    model = _driver(["PIVOT", "SUCCESS"])
    _, result = _run(model, Budget(tool_calls={"search": 5, "open": 5}), mini_corpus)
    after = [msgs for msgs in _act_requests(model) if "SUMMARY-0" in msgs[0].content][0]
    calls = [c.name for m in after if m.role == "assistant" for c in m.tool_calls]
    assert calls == ["search", "open"]  # the earlier attempt's queries are still in the context
    results = [m.content for m in after if m.role == "tool"]
    assert results[0].startswith("[older result removed")  # only the latest tool output is kept
    assert "Already used (do not repeat): search(" in after[0].content
    assert result.answer == "Beta"


def test_the_summary_replaces_the_trajectory_after_more_than_ten_turns(mini_corpus):
    from budgetgraph.agents.bats.attempts import Setup
    from budgetgraph.agents.bats.steps import BatsSteps
    from budgetgraph.planners.bats import BATSOptions
    from budgetgraph.planners.bats_wording import RESEARCH

    def steps(options: BATSOptions) -> BatsSteps:
        return BatsSteps(None, Setup(options, RESEARCH, None, "", "", 384, 256))  # type: ignore[arg-type]

    paper, ours = steps(BATSOptions()), steps(BATSOptions(context="every_verify"))
    assert not paper.replaces({"messages": [], "turns": 10, "summarised_at": 0})
    assert paper.replaces({"messages": [], "turns": 11, "summarised_at": 0})
    assert not paper.replaces({"messages": [], "turns": 14, "summarised_at": 11})
    assert ours.replaces({"messages": [], "turns": 1, "summarised_at": 0})


def test_a_continue_correction_is_the_next_step_not_the_last():
    plan = add_steps([], ["a", "b", "c"])
    plan = mark(plan, "1", "done")
    plan = add_steps(plan, ["dig"], branch_of="1", first=True)
    assert [s["id"] for s in plan] == ["1", "1.1", "2", "3"]
    assert current(plan)["text"] == "dig"


def test_a_search_with_no_hits_is_a_failed_step(mini_corpus):
    """The corpus tools say when they found nothing (status ``empty``), and BATS reads the status, not the text."""
    from budgetgraph.agents.bats import failed as _failed
    from budgetgraph.meter import ToolMeter

    meter = ToolMeter({t.name: t for t in mini_corpus.tools()}, Ledger(Budget()))

    async def status(name, **arguments):
        admitted = meter.admit(ToolCall(id="c", name=name, arguments=arguments))
        outcome = await meter.run(admitted)
        return Message.tool(outcome.text, "c", name, outcome.status)

    none = asyncio.run(status("search", queries=["zzqx nothing", "qqzz neither"]))
    some = asyncio.run(status("search", queries=["zzqx nothing", "Apple Remote"]))
    missing = asyncio.run(status("open", title="No Such Page"))
    page = asyncio.run(status("open", title="Apple Remote"))
    assert (none.status, some.status, missing.status, page.status) == ("empty", "ok", "empty", "ok")
    assert _failed(none) and not _failed(some) and _failed(missing) and not _failed(page)
    assert _failed(Message.tool("Budget exhausted for search", "c", "search", "refused"))
    assert _failed(Message.tool("looks fine", "c", "open", "error"))  # the status decides, not the words


def test_selection_judges_only_the_best_tier_and_votes_in_code():
    tiered = [
        {"answer": "Alpha", "verifier": "CONTINUE"},
        {"answer": "Gamma", "verifier": "PIVOT"},
        {"answer": "Beta", "verifier": "CONTINUE"},
    ]
    assert best_tier(tiered) == [0, 2]
    votes = [{"answer": a, "verifier": "CONTINUE"} for a in ("Alpha", "alpha.", "Beta")]
    assert vote_winner(votes, [0, 1, 2]) == 1  # the latest of the repeated answer
    assert vote_winner(votes, [0, 2]) is None  # a tie goes to the judge
    assert list(Selection.model_json_schema()["properties"]) == ["reason", "index"]  # reason before choice


def test_the_judge_sees_only_the_best_tier_with_each_trajectory(mini_corpus):
    model = _driver(["CONTINUE", "CONTINUE", "PIVOT"], answers=("Alpha", "Beta", "Gamma"), pick=2)
    _, result = _run(model, Budget(tool_calls={"search": 9, "open": 9}), mini_corpus)
    (prompt,) = [msgs[-1].content for msgs in _requests(model, "select_answer")]
    assert "Alpha" in prompt and "Beta" in prompt and "Gamma" not in prompt
    assert "calls: search(" in prompt and result.answer == "Beta"
    details = result.details
    assert [a["verifier"] for a in details["attempts"]] == ["CONTINUE", "CONTINUE", "PIVOT"]
    assert details["selected_by"] == "judge" and details["chosen"] == 1
    model = _driver(["CONTINUE", "CONTINUE", "CONTINUE"], answers=("Alpha", "Beta", "Alpha"))
    _, result = _run(model, Budget(tool_calls={"search": 9, "open": 9}), mini_corpus)
    assert result.answer == "Alpha" and not _requests(model, "select_answer")  # voted in code
    assert result.details["selected_by"] == "vote" and result.details["chosen"] == 2


def test_full_mode_runs_until_the_budget_is_spent(mini_corpus):
    model = _driver(["SUCCESS"] * 10, answers=("Alpha",) * 10)
    _, result = _run(
        model,
        Budget(tool_calls={"search": 5, "open": 9}),
        mini_corpus,
        mode="full",
        stop_on_exhausted=True,
    )
    # more than the early-stop mode's 3 attempts: four, as the fifth search exhausts the search budget
    assert len(_verifier_notes(result)) == 4
    assert str(result.stop_reason) == "budget_exhausted: search" and result.answer == "Alpha"
    check_ledger(result)


def test_bats_honours_the_agents_system_prompt_and_instructions(mini_corpus):
    model = _driver(["SUCCESS"])
    _run(
        model,
        Budget(tool_calls={"search": 5, "open": 5}),
        mini_corpus,
        system_prompt="You are ACME's research agent.",
        instructions="Answer in French.",
    )
    for msgs, _tools, _ in model.requests:
        assert (
            msgs[0].content.startswith("You are ACME's research agent.")
            and "Answer in French." in msgs[0].content
        )


def test_the_per_tool_block_gives_each_tool_its_regime_and_allowance():
    from budgetgraph.budget import Ledger
    from budgetgraph.budget.tool_block import BEST_USE, allowed_this_turn, render_tool_block

    assert [allowed_this_turn(r, 100, batch=True) for r in (100, 50, 20, 5, 0)] == [5, 3, 1, 1, 0]
    assert allowed_this_turn(5, 5, batch=True) == 2  # a budget of 5 is not spent in one call
    assert allowed_this_turn(10, 10, batch=False) == 3
    ledger = Ledger(Budget(tool_calls={"search": 5, "open": 2}, output_tokens=1000))
    ledger.commit(ledger.reserve({"tool:open": 2}))
    block = render_tool_block(ledger, {"search": "queries"})
    assert (
        "search: used 0, remaining 5 of 5 (HIGH: explore broadly with diverse calls; at most 2 queries"
        in block
    )
    assert "open: used 2, remaining 0 of 2 (exhausted: do not call it)" in block
    assert "output tokens: used 0, remaining 1,000 of 1,000" in block and BEST_USE in block
    ledger.commit(ledger.reserve({"tool:search": 4}))
    assert "at most 1 query this turn" in render_tool_block(ledger, {"search": "queries"})
    assert "at most 1 call this turn" in render_tool_block(ledger)


def test_bats_shows_the_per_tool_block_and_tracker_keeps_its_own_unless_asked(mini_corpus):
    model = _driver(["SUCCESS"])
    _run(model, Budget(tool_calls={"search": 5, "open": 5}), mini_corpus)
    tool_texts = [
        m.content
        for msgs in _act_requests(model)
        for m in msgs
        if m.role == "tool" and not m.content.startswith("[older")
    ]
    assert tool_texts and all("Make the best use of the available resources." in t for t in tool_texts)
    tracker = Agent(ScriptedModel([]), mini_corpus.tools(), Budget(), planner="tracker")
    assert (tracker.options.budget_block or tracker.spec.budget_block) == "scarcest"
    assert "Judge each tool by its own budget" not in tracker.settings.system_prompt
    per_tool = Agent(
        ScriptedModel([]),
        mini_corpus.tools(),
        Budget(),
        planner="tracker",
        options=AgentOptions(budget_block="per_tool", budget_intro=True),
    )
    assert "Judge each tool by its own budget" in per_tool.settings.system_prompt
    from budgetgraph.agents.planners import parse_planner

    assert parse_planner("tracker[block=per_tool]") == ("tracker", {"budget_block": "per_tool"})


def test_consistency_selection_stops_once_the_majority_is_settled(mini_corpus):
    # the same answer four times: Beta confidence 0.969 >= 0.95 stops the run with searches left
    model = _driver(["SUCCESS"] * 10, answers=("Alpha",) * 10)
    _, result = _run(
        model, Budget(tool_calls={"search": 20, "open": 20}), mini_corpus, selection="consistency"
    )
    assert len(_verifier_notes(result)) == 4 and result.answer == "Alpha"
    assert result.details["selected_by"] == "consistency" and result.details["chosen"] == 3
    assert result.details["consistency"] == {
        "samples": 4,
        "confidence": 0.9688,
        "rule": "beta",
        "stopped": True,
    }
    assert result.usage.tool_calls["search"] == 4  # 16 of 20 searches never spent
    check_ledger(result)


def test_consistency_selection_takes_the_majority_over_the_verifiers_tier(mini_corpus):
    # Alpha twice (PIVOT), Beta once (SUCCESS): the tier rule picks Beta, the majority vote Alpha
    decisions = ["PIVOT", "SUCCESS", "PIVOT"]
    answers = ("Alpha", "Beta", "Alpha")
    budget = Budget(tool_calls={"search": 4, "open": 9})  # the fourth search exhausts it: three attempts
    model = _driver(decisions, answers=answers)
    _, tier = _run(model, budget, mini_corpus, mode="full", stop_on_exhausted=True)
    assert tier.answer == "Beta" and tier.details["selected_by"] == "rank"
    model = _driver(decisions, answers=answers)
    _, result = _run(model, budget, mini_corpus, selection="consistency", stop_on_exhausted=True)
    assert result.answer == "Alpha" and result.details["selected_by"] == "consistency"
    assert result.details["consistency"]["stopped"] is False  # the search budget ended it, not the rule
    assert str(result.stop_reason) == "budget_exhausted: search"
    check_ledger(result)


def test_consistency_selection_falls_back_to_the_tier_on_a_tie(mini_corpus):
    model = _driver(["PIVOT", "SUCCESS"], answers=("Alpha", "Beta"))
    _, result = _run(
        model,
        Budget(tool_calls={"search": 3, "open": 9}),
        mini_corpus,
        selection="consistency",
        stop_on_exhausted=True,  # two attempts: the third search ends it
    )
    assert result.answer == "Beta" and result.details["selected_by"] == "rank"
    assert result.details["consistency"] == {
        "samples": 2,
        "confidence": 0.5,
        "rule": "beta",
        "stopped": False,
    }


def test_bats_selection_is_checked_and_is_a_label_option():
    from budgetgraph.agents.planners import parse_planner
    from budgetgraph.errors import ConfigError

    assert parse_planner("bats[bats_selection=consistency]") == ("bats", {"bats_selection": "consistency"})
    with pytest.raises(ConfigError, match="bats_selection must be 'tier' or 'consistency'"):
        BATSOptions(selection="vote")


def test_the_tail_layout_keeps_one_system_message_so_acting_calls_share_their_prefix(mini_corpus):
    runs = {}
    for layout in ("system", "tail"):
        model = _driver(["PIVOT", "SUCCESS"])
        _, result = _run(model, Budget(tool_calls={"search": 5, "open": 5}), mini_corpus, layout=layout)
        runs[layout] = (_act_requests(model), result)
        check_ledger(result)
    (system_acts, by_system), (tail_acts, by_tail) = runs["system"], runs["tail"]
    assert by_tail.answer == by_system.answer == "Beta" and len(tail_acts) == len(system_acts) >= 4
    assert len({msgs[0].content for msgs in system_acts}) > 1  # the checklist changes the system message
    assert len({msgs[0].content for msgs in tail_acts}) == 1
    for before, after in zip(tail_acts, tail_acts[1:], strict=False):
        status = after[-1]
        assert (
            status.role == "user"
            and status.content.startswith("Where you stand:\n\n")
            and "Your checklist" in status.content
        )
        if len(after) > len(before):  # the same attempt: all but its latest result and the state is reused
            assert after[: len(before) - 2] == before[: len(before) - 2]
    for system, tail in zip(system_acts, tail_acts, strict=True):  # the same state, only placed elsewhere
        state = tail[-1].content.removeprefix("Where you stand:\n\n")
        assert system[0].content == tail[0].content + "\n\n" + state and system[1:] == tail[1:-1]


def test_bats_layout_is_checked_and_is_a_label_option():
    from budgetgraph.agents.planners import parse_planner
    from budgetgraph.errors import ConfigError

    assert parse_planner("bats[bats_layout=tail]") == ("bats", {"bats_layout": "tail"})
    with pytest.raises(ConfigError, match="bats_layout must be 'system' or 'tail'"):
        BATSOptions(layout="end")


def test_bats_stops_at_a_cap_that_its_tools_share(mini_corpus):
    import copy

    tools = []
    for t in mini_corpus.tools():
        shared = copy.copy(t)
        shared.budget_key = "docs"  # search and open draw on one cap
        tools.append(shared)

    @tool
    def calculator(expression: str) -> str:
        """Evaluate arithmetic (uncapped)."""
        return "0"

    model = _driver(["SUCCESS"])
    paper = BATSOptions(stop_on_exhausted=True)
    agent = Agent(model, [*tools, calculator], Budget(tool_calls={"docs": 1}), planner="bats", options=paper)
    result = asyncio.run(agent.arun("Who designed the Apple Remote?"))
    assert str(result.stop_reason) == "budget_exhausted: docs"  # the paper's rule, on the shared cap
    assert sum(result.usage.tool_calls.values()) == 1 and "verify" not in result.usage.by_role
    assert result.usage.by_role["act"]["llm_calls"] == 1  # no second act call into a refused open
    assert not any(m.content.startswith("Budget exhausted") for m in result.messages)


def test_the_budget_aware_stop_ends_a_bats_attempt_and_selects(mini_corpus):
    from budgetgraph.models.messages import Message

    inner = _driver(["SUCCESS"])

    def estimating(messages, tools):
        reply = inner._fn(messages, tools)  # the driver's own step
        if [c.name for c in reply.tool_calls] == ["open"]:  # before reading: more searches than are left
            return Message.assistant("<need>search=9, open=1</need>", reply.tool_calls)
        return reply

    model = ScriptedModel(estimating)
    _, result = _run(
        model, Budget(tool_calls={"search": 3, "open": 3}), mini_corpus, options=BATSOptions(budget_stop=True)
    )
    assert result.stop_reason.kind == "stopped_early" and "search=9" in result.stop_reason.message
    assert result.usage.tool_calls == {"search": 1}  # the open beside the estimate did not run
    (estimate,) = result.details["estimates"]
    assert estimate["need"] == {"search": 9, "open": 1} and estimate["remaining"] == {"search": 2, "open": 3}
    assert result.answer  # selected (or answered) from what the attempt found
    assert "<need>" in model.requests[1][0][0].content  # BATS's system prompt asks for estimates
    tool_results = [m.content for m in result.messages if m.role == "tool"]
    assert tool_results and "estimate what you still need" in tool_results[0]  # and its block, each time
    check_ledger(result)


def test_a_bats_reply_with_only_a_fitting_estimate_goes_on_with_a_forced_call(mini_corpus):
    from budgetgraph.agents.loop.features import GO_ON
    from budgetgraph.models.messages import Message

    inner = _driver(["SUCCESS"])
    held: list[Message] = []

    def estimating(messages, tools):
        if messages[-1].content == GO_ON and held:
            return held[0]  # the call it estimated, made on the forced turn
        reply = inner._fn(messages, tools)
        if [c.name for c in reply.tool_calls] == ["open"] and not held:  # the open it meant: only estimated
            held.append(reply)
            return Message.assistant("<need>open=1</need>")
        return reply

    model = ScriptedModel(estimating)
    _, result = _run(
        model, Budget(tool_calls={"search": 3, "open": 3}), mini_corpus, options=BATSOptions(budget_stop=True)
    )
    assert held and result.usage.tool_calls == {"search": 1, "open": 1}  # the estimated open was made
    assert result.stop_reason.kind != "stopped_early" and result.answer
    forced = [s.get("tool_choice") for msgs, _, s in model.requests if msgs[-1].content == GO_ON]
    assert forced and forced[0] not in (None, "auto", "none")
    assert result.details["estimates"][0]["need"] == {"open": 1}
    check_ledger(result)


def test_bats_pauses_where_its_budget_runs_out_and_a_grant_goes_on(mini_corpus):
    from langgraph.checkpoint.memory import InMemorySaver

    model = _driver(["CONTINUE", "CONTINUE", "CONTINUE"], answers=("Alpha", "Beta", "Gamma"))
    agent = Agent(
        model,
        mini_corpus.tools(),
        Budget(tool_calls={"search": 1, "open": 1}),
        planner="bats",
        checkpointer=InMemorySaver(),
        on_exhausted="pause",
    )
    first = agent.run("Who designed the Apple Remote?", thread_id="b")
    assert first.stop_reason.kind == "interrupted" and first.budget_request is not None
    assert first.usage.tool_calls == {"search": 1, "open": 1}
    more = asyncio.run(agent.aresume("b", grant={"search": 1, "open": 1}))
    assert more.usage.tool_calls == {"search": 2, "open": 2} and more.stop_reason.kind == "interrupted"
    done = asyncio.run(agent.aresume("b", grant="decline"))
    assert done.stop_reason.kind == "budget_exhausted" and done.answer
    assert done.usage.tool_calls == {"search": 2, "open": 2}
    check_ledger(done)
