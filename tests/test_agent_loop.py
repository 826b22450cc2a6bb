"""Control flow of the agent loop with the ScriptedModel test double (real ledger, real graph)."""

from __future__ import annotations

import asyncio

import pytest

from budgetgraph import (
    Agent,
    AgentOptions,
    Budget,
    BudgetExhausted,
    PriceError,
    ScriptedModel,
    ToolCall,
    tool,
)
from budgetgraph.models.messages import Message


def make_search(log: list[str]):
    @tool
    async def search(query: str) -> str:
        """Search for a query."""
        log.append(query)
        return f"result for {query}"

    return search


def test_four_parallel_searches_under_a_cap_of_three():
    log: list[str] = []
    model = ScriptedModel(
        lambda msgs, tools: ScriptedModel.tool_calls([("search", {"query": f"q{i}"}) for i in range(4)])
    )
    agent = Agent(model=model, tools=[make_search(log)], budget=Budget(tool_calls={"search": 3}))
    result = agent.run("what?")
    assert len(log) == 3 == result.usage.tool_calls["search"]
    calls = [c for m in result.messages for c in m.tool_calls]
    answered = {m.tool_call_id for m in result.messages if m.role == "tool"}
    assert {c.id for c in calls} == answered  # every call got a tool message
    refused = [m for m in result.messages if m.role == "tool" and "not run" in m.content]
    assert len(refused) == 1 and "Budget exhausted for search" in refused[0].content
    assert result.stop_reason.kind == "budget_exhausted" and result.stop_reason.resource == "search"
    assert str(result.stop_reason) == "budget_exhausted: search"
    assert result.answer and "result for q" in result.answer
    assert result.usage.llm_calls == 2  # one act turn, one final answer
    assert sum(r["llm_calls"] for r in result.usage.by_role.values()) == result.usage.llm_calls


def test_parallel_tool_calls_false_runs_one_call_per_turn():
    log: list[str] = []

    def reply(msgs, tools):
        if sum(m.role == "tool" for m in msgs) >= 2:
            return ScriptedModel.text("<answer>done</answer>")
        return ScriptedModel.tool_calls([("search", {"query": f"q{len(msgs)}-{i}"}) for i in range(3)])

    agent = Agent(
        model=ScriptedModel(reply),
        tools=[make_search(log)],
        budget=Budget(tool_calls={"search": 5}),
        settings={"temperature": 0.0, "parallel_tool_calls": False},
    )
    result = agent.run("what?")
    assert log == ["q2-0", "q4-0"] and result.answer == "done"
    assert all(len(m.tool_calls) <= 1 for m in result.messages)
    assert result.usage.tool_calls["search"] == 2


def test_a_prompt_that_fills_the_context_window_ends_in_an_answer_not_an_error():
    @tool
    async def read(page: int) -> str:
        """Read a long page."""
        return f"page {page}: " + "lorem ipsum dolor sit amet " * 60  # about 400 tokens

    def reply(msgs, tools):
        if not tools:
            return ScriptedModel.text("<answer>from what fit</answer>")
        return ScriptedModel.tool_calls([("read", {"page": len(msgs)})])

    model = ScriptedModel(reply, context_window=1200)
    agent = Agent(model=model, tools=[read], planner="react", max_tokens=200, answer_max_tokens=100)
    result = agent.run("what?")
    assert result.stop_reason.kind == "context_full" and result.answer == "from what fit"
    assert "context window (1200)" in result.stop_reason.message
    assert result.usage.tool_calls["read"] >= 2
    for messages, tools, settings in model.requests:  # no request was sent that the window cannot hold
        assert model.count_tokens(messages, tools) + settings["max_tokens"] <= 1200
    assert any("[removed" in m.content for m in model.requests[-1][0] if m.role == "tool")


def test_tracker_shows_a_budget_block_and_react_does_not():
    seen: dict[str, list[str]] = {}

    def policy(planner):
        def fn(msgs, tools):
            tool_msgs = [m.content for m in msgs if m.role == "tool"]
            if tool_msgs:
                seen[planner] = tool_msgs
                return ScriptedModel.text("<answer>done</answer>")
            return ScriptedModel.tool_calls([("search", {"query": "x"})])

        return fn

    for planner in ("react", "tracker"):
        agent = Agent(
            model=ScriptedModel(policy(planner)),
            tools=[make_search([])],
            budget=Budget(tool_calls={"search": 4}),
            planner=planner,
        )
        result = agent.run("q")
        assert result.answer == "done" and result.stop_reason.kind == "answered"
    assert "<budget>" in seen["tracker"][0] and "search: used 1, remaining 3 of 4" in seen["tracker"][0]
    assert "<budget>" not in seen["react"][0]
    intro = AgentOptions(budget_intro=True)
    tracker_system = Agent(model=ScriptedModel([]), planner="tracker", options=intro).settings.system_prompt
    react_system = Agent(model=ScriptedModel([]), planner="react").settings.system_prompt
    assert "CRITICAL" in tracker_system and "CRITICAL" not in react_system


def test_the_default_tracker_meets_the_budget_in_tool_results_only():
    model = ScriptedModel(
        [ScriptedModel.tool_calls([("search", {"query": "x"})]), ScriptedModel.text("<answer>done</answer>")]
    )
    agent = Agent(model, [make_search([])], "search=4", planner="tracker")  # budget_intro=False by default
    assert agent.run("q").answer == "done"
    react = Agent(model=ScriptedModel([]), planner="react").settings.system_prompt
    first, second = model.requests[0][0], model.requests[1][0]
    assert first[0].content == react and "<budget>" not in "".join(
        m.content for m in first
    )  # react's first turn
    assert "<budget>" in second[-1].content and "search: used 1, remaining 3 of 4" in second[-1].content


def test_bad_tool_calls_raising_and_hanging_tools_do_not_end_the_run():
    @tool
    def boom(x: int) -> str:
        """Always fails."""
        raise RuntimeError("disk on fire")

    @tool(timeout=0.2)
    async def slow() -> str:
        """Never returns in time."""
        await asyncio.sleep(5)
        return "late"

    replies = [
        ScriptedModel.tool_calls(
            [
                ToolCall("a", "boom", {"x": "not a number"}),
                ToolCall("b", "nope", {}),
                ToolCall("c", "boom", {}, error="arguments of 'boom' are not valid JSON: {x:"),
                ToolCall("d", "boom", {"x": 1}),
                ToolCall("e", "slow", {}),
            ]
        ),
        ScriptedModel.text("<answer>survived</answer>"),
    ]
    result = Agent(
        model=ScriptedModel(replies), tools=[boom, slow], budget=Budget(tool_calls={"boom": 5})
    ).run("q")
    tool_msgs = {m.tool_call_id: m.content for m in result.messages if m.role == "tool"}
    assert "invalid arguments for boom" in tool_msgs["a"] and "x" in tool_msgs["a"]
    assert "unknown tool 'nope'" in tool_msgs["b"]
    assert "not valid JSON" in tool_msgs["c"]
    assert "RuntimeError: disk on fire" in tool_msgs["d"]
    assert "timed out after 0.2s" in tool_msgs["e"]
    assert result.answer == "survived"
    assert result.usage.tool_calls == {"boom": 1, "slow": 1}  # malformed calls are not charged


def test_token_and_call_caps_are_never_exceeded_and_the_answer_reserve_holds():
    model = ScriptedModel(lambda m, t: ScriptedModel.tool_calls([("search", {"query": "y" * 200})]))
    budget = Budget(total_tokens=3000, llm_calls=4)
    agent = Agent(
        model=model, tools=[make_search([])], budget=budget, max_tokens=200, system_prompt="Use the tools."
    )
    result = agent.run("question")
    u = result.usage
    assert u.total_tokens <= 3000 and u.llm_calls <= 4
    assert result.stop_reason.kind == "budget_exhausted"
    assert u.by_role.get("answer", {}).get("llm_calls") == 1  # the reserve paid for a final answer


def test_unknown_price_with_a_dollar_cap_is_an_error_before_any_call():
    model = ScriptedModel([ScriptedModel.text("x")], name="mystery-model")
    model.price = None
    with pytest.raises(PriceError, match="mystery-model"):
        Agent(model=model, budget=Budget(usd="0.01"))


def test_dollar_cap_counts_tool_prices():
    log: list[str] = []
    search = make_search(log)
    search.price = __import__("decimal").Decimal("0.001")
    model = ScriptedModel(lambda m, t: ScriptedModel.tool_calls([("search", {"query": "q"})] * 2))
    result = Agent(model=model, tools=[search], budget=Budget(usd="0.003")).run("q")
    assert len(log) == 3 and result.usage.usd == __import__("decimal").Decimal("0.003")
    assert result.stop_reason.resource == "usd"


def test_on_exhausted_raise_carries_the_partial_result():
    model = ScriptedModel(lambda m, t: ScriptedModel.tool_calls([("search", {"query": "q"})]))
    agent = Agent(
        model=model, tools=[make_search([])], budget=Budget(tool_calls={"search": 1}), on_exhausted="raise"
    )
    with pytest.raises(BudgetExhausted) as err:
        agent.run("q")
    assert err.value.result.usage.tool_calls == {"search": 1}


def test_checkpointed_run_resumes_from_the_real_spend():
    from langgraph.checkpoint.memory import InMemorySaver

    log: list[str] = []

    def fn(msgs, tools):
        n = sum(1 for m in msgs if m.role == "tool")
        return (
            ScriptedModel.tool_calls([("search", {"query": f"q{n}"})])
            if n < 2
            else ScriptedModel.text("<answer>ok</answer>")
        )

    saver = InMemorySaver()
    budget = Budget(tool_calls={"search": 2}, llm_calls=5)
    first = Agent(
        model=ScriptedModel(fn),
        tools=[make_search(log)],
        budget=budget,
        checkpointer=saver,
        options=AgentOptions(interrupt_before=("tools",)),
    )
    partial = asyncio.run(first.arun("q", thread_id="t1"))
    assert partial.stop_reason.kind == "interrupted" and partial.usage.llm_calls == 1 and not log
    again = Agent(model=ScriptedModel(fn), tools=[make_search(log)], budget=budget, checkpointer=saver)
    final = asyncio.run(again.aresume("t1"))
    assert log == ["q0", "q1"]
    assert final.usage.tool_calls == {"search": 2}
    assert final.usage.llm_calls >= 3  # the first turn, spent before the interrupt, is still counted
    assert final.usage.llm_calls <= 5 and final.answer


def test_astream_yields_typed_events():
    def fn(msgs, tools):
        if any(m.role == "tool" for m in msgs):
            return ScriptedModel.text("<answer>streamed</answer>")
        return ScriptedModel.tool_calls([("search", {"query": "x"})])

    agent = Agent(model=ScriptedModel(fn), tools=[make_search([])], budget=Budget(tool_calls={"search": 2}))

    async def collect():
        return [e async for e in agent.astream("q")]

    events = asyncio.run(collect())
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "ModelTurn",
        "ToolCallStarted",
        "ToolCallFinished",
        "ToolResult",
        "BudgetUpdate",
        "TextDelta",
        "ModelTurn",
        "FinalAnswer",
    ]
    started, finished = events[1], events[2]
    assert (started.name, started.units, started.cost, started.arguments) == (
        "search",
        1,
        0.0,
        {"query": "x"},
    )
    assert finished.charged and finished.units == 1 and finished.call_id == started.call_id
    assert events[3].call is not None and events[3].call.name == "search"
    assert "".join(e.text for e in events if type(e).__name__ == "TextDelta") == "streamed"  # no markup
    assert events[-1].result.answer == "streamed"


@pytest.mark.parametrize("trim", [True, False])
def test_a_batch_larger_than_the_budget_runs_what_fits_or_is_refused_whole(trim):
    seen: list[list[str]] = []

    async def batch(queries: list[str]) -> str:
        """Search several queries.

        Args:
            queries: the queries
        """
        seen.append(list(queries))
        return " | ".join(f"hit for {q}" for q in queries)

    from budgetgraph.tools import Tool

    def fn(msgs, tools):
        if any(m.role == "tool" for m in msgs):
            return ScriptedModel.text("<answer>done</answer>")
        return ScriptedModel.tool_calls([("batch", {"queries": ["a", "b", "c", "d"]})])

    tools = [Tool(batch, units="queries", price="0.001", trim_batches=trim)]
    result = Agent(ScriptedModel(fn), tools, Budget(tool_calls={"batch": 2}, usd="0.01")).run("q")
    text = next(m.content for m in result.messages if m.role == "tool")
    if trim:
        assert seen == [["a", "b"]] and text.startswith("[Budget: only the first 2 of 4 queries were run")
        assert result.usage.tool_calls == {"batch": 2} and float(result.usage.usd) == pytest.approx(0.002)
    else:
        assert seen == [] and "needed 4, 2 left" in text and result.usage.tool_calls == {}


def _two_tools(log: list[str]):
    @tool
    def search(query: str) -> str:
        """Search."""
        log.append(f"search {query}")
        return f"hits for {query}"

    @tool
    def fetch(url: str) -> str:
        """Fetch a page."""
        log.append(f"fetch {url}")
        return f"the page {url} says: 42"

    return [search, fetch]


def _retries_the_spent_tool(messages, tools):
    """Search once, search again (refused: its cap is 1), then fetch, then answer from the page."""
    done = [m for m in messages if m.role == "tool"]
    if len(done) == 0:
        return ScriptedModel.tool_calls([("search", {"query": "a"})])
    if len(done) == 1:
        return ScriptedModel.tool_calls([("search", {"query": "b"})])
    if not any(m.name == "fetch" for m in done):
        return ScriptedModel.tool_calls([("fetch", {"url": "u"})])
    return ScriptedModel.text("<answer>42</answer>")


def test_a_refused_turn_returns_to_the_model_while_another_tool_is_funded():
    log: list[str] = []
    budget = Budget(tool_calls={"search": 1, "fetch": 2})
    result = Agent(ScriptedModel(_retries_the_spent_tool), _two_tools(log), budget, planner="tracker").run(
        "q?"
    )
    assert log == ["search a", "fetch u"]  # the funded tool ran after the refused turn
    assert result.answer == "42" and result.stop_reason.kind == "answered"
    refused = [m for m in result.messages if m.role == "tool" and m.status == "refused"]
    assert len(refused) == 1 and "search" in refused[0].content
    # the block names the spent tool out and keeps the funded one's allowance; the run is not CRITICAL
    block = refused[0].content
    assert (
        "search: used 1, remaining 0 of 1 (exhausted" in block
        and "fetch: used 0, remaining 2 of 2 (at most" in block
    )
    assert "regime: CRITICAL" not in block


def test_the_papers_stop_at_the_first_exhausted_budget_is_kept_by_name():
    log: list[str] = []
    budget = Budget(tool_calls={"search": 1, "fetch": 2})
    paper = AgentOptions(stop_on_exhausted=True)
    result = Agent(ScriptedModel(_retries_the_spent_tool), _two_tools(log), budget, options=paper).run("q?")
    assert log == ["search a"]  # the first exhausted tool ends the run; fetch never runs
    assert result.stop_reason.kind == "budget_exhausted" and result.stop_reason.resource == "search"


def test_two_refused_turns_in_a_row_go_to_the_answer():
    log: list[str] = []
    always_search = ScriptedModel(
        lambda messages, tools: (
            ScriptedModel.tool_calls([("search", {"query": "again"})])
            if tools
            else ScriptedModel.text("<answer>done</answer>")
        )
    )
    budget = Budget(tool_calls={"search": 1, "fetch": 2})
    result = Agent(always_search, _two_tools(log), budget).run("q?")
    assert log == ["search again"]
    refused = [m for m in result.messages if m.role == "tool" and m.status == "refused"]
    assert len(refused) == 2 and result.stop_reason.kind == "budget_exhausted"
    assert result.usage.llm_calls == 4  # 3 acting turns and the answer: no loop to max_turns


def test_the_tracker_block_never_advises_a_small_cap_in_one_call():
    from budgetgraph.budget.block import render_budget_block
    from budgetgraph.budget.ledger import Ledger

    ledger = Ledger(Budget(tool_calls={"web_search": 3, "fetch_page": 2}))
    block = render_budget_block(ledger, units={"web_search": "queries", "fetch_page": "urls"})
    assert "web_search: used 0, remaining 3 of 3 (at most 2 queries this turn)" in block
    assert "fetch_page: used 0, remaining 2 of 2 (at most 1 url this turn)" in block
    assert "3-5" not in block and "regime: HIGH" in block
    ledger.commit(ledger.reserve({"tool:web_search": 3}))
    block = render_budget_block(ledger, units={"web_search": "queries", "fetch_page": "urls"})
    assert "(exhausted: do not call it" in block and "regime: HIGH" in block  # fetch_page is untouched
    ledger.commit(ledger.reserve({"tool:fetch_page": 2}))
    assert "regime: CRITICAL" in render_budget_block(ledger)  # nothing left to call


def _estimating(need: str, then: str = "<answer>best so far</answer>"):
    """Search once, then write the given estimate beside another search call, then answer."""

    def script(messages, tools):
        done = [m for m in messages if m.role == "tool"]
        if not tools:
            return ScriptedModel.text(then)
        if not done:
            return ScriptedModel.tool_calls([("search", {"query": "first"})])
        if len(done) == 1:
            calls = ScriptedModel.tool_calls([("search", {"query": "second"})]).tool_calls
            return Message.assistant(f"<need>{need}</need>", calls)
        return ScriptedModel.text(then)

    return script


@pytest.mark.parametrize("planner", ["tracker", "react"])
def test_a_need_that_does_not_fit_stops_the_run_early_with_its_best_answer(planner):
    log: list[str] = []
    agent = Agent(
        ScriptedModel(_estimating("search=4, fetch=1")),
        _two_tools(log),
        Budget(tool_calls={"search": 3, "fetch": 2}),
        planner=planner,
        options=AgentOptions(budget_stop=True),
    )
    result = agent.run("q?")
    assert log == ["search first"]  # the call beside the estimate was not run
    assert result.stop_reason.kind == "stopped_early" and "search=4" in result.stop_reason.message
    assert result.answer == "best so far"
    (estimate,) = result.details["estimates"]
    assert estimate["need"] == {"search": 4, "fetch": 1}
    assert estimate["remaining"] == {"search": 2, "fetch": 2} and estimate["used"] == {
        "search": 1,
        "fetch": 0,
    }
    system = agent.settings.system_prompt
    assert "<need>" in system  # the agent is told to estimate
    tool_messages = [m.content for m in result.messages if m.role == "tool"]
    assert planner == "react" or "estimate what you still need" in tool_messages[0]


def test_an_estimate_that_fits_goes_on_and_infeasible_stops():
    on = AgentOptions(budget_stop=True)
    log: list[str] = []
    budget = Budget(tool_calls={"search": 3, "fetch": 2})
    fits = Agent(ScriptedModel(_estimating("search=1")), _two_tools(log), budget, options=on).run("q?")
    assert log == ["search first", "search second"] and fits.stop_reason.kind == "answered"
    assert fits.details["estimates"][0]["need"] == {"search": 1}
    log.clear()
    gave_up = Agent(ScriptedModel(_estimating("infeasible")), _two_tools(log), budget, options=on).run("q?")
    assert log == ["search first"] and gave_up.stop_reason.kind == "stopped_early"
    assert (
        "infeasible" in gave_up.stop_reason.message
        and gave_up.details["estimates"][0]["need"] == "infeasible"
    )
    log.clear()
    off = Agent(ScriptedModel(_estimating("search=9")), _two_tools(log), budget).run("q?")
    assert log == ["search first", "search second"] and "estimates" not in off.details  # only when asked


def test_parse_need_trusts_only_known_tools():
    from budgetgraph.agents.need import parse_need, strip_need

    tools = ["search", "open"]
    assert parse_need("x <need>search=2, open: 1, rm_rf=9</need>", tools) == {"search": 2, "open": 1}
    assert parse_need("<need>NONE</need>", tools) == "none"
    assert parse_need("<need>Infeasible: no source</need>", tools) == "infeasible"
    assert parse_need("no estimate", tools) is None and parse_need("<need>lots</need>", tools) is None
    assert parse_need("<need>search=1</need> then <need>search=3</need>", tools) == {"search": 3}  # the last
    assert strip_need("a <need>search=1</need> b") == "a  b"


def _read_when_asked(messages, results):
    """Open the search's first title when the loop asks to read first, its second when it asks for one more;
    None otherwise."""
    asked = messages[-1].content if messages[-1].role == "user" else ""
    if "Read first" in asked:
        title = results[-1].content.split("[", 1)[1].split("]", 1)[0]
    elif "read one more" in asked:
        title = results[0].content.split("\n2. [", 1)[1].split("]", 1)[0]
    else:
        return None
    return ScriptedModel.tool_calls([("open", {"title": title})])


def _researcher(answer):
    """A scripted agent: search, open what the loop asks it to read, then ``answer(tool results)``."""

    def reply(messages, tools):
        results = [m for m in messages if m.role == "tool"]
        if not results:
            return ScriptedModel.tool_calls([("search", {"queries": ["Apple Remote"]})])
        if (reading := _read_when_asked(messages, results)) is not None:
            return reading
        return ScriptedModel.text(f"<answer>{answer(results)}</answer>")

    return reply


_skims = _researcher(lambda results: "from what I read" if len(results) > 1 else "skim")
"""Answers from the snippets unless asked to read."""
_reads_what_it_is_asked = _researcher(lambda results: f"after {len(results) - 1} reads")


def test_an_agent_that_answers_from_snippets_is_asked_once_to_read_first(mini_corpus):
    model = ScriptedModel(_skims)
    budget = Budget(tool_calls={"search": 3, "open": 2})
    reads = AgentOptions(read_first=True)
    result = Agent(model, mini_corpus.tools(), budget, planner="tracker", options=reads).run(
        "Who designed the Apple Remote?"
    )
    assert result.usage.tool_calls == {"search": 1, "open": 1} and result.answer == "from what I read"
    asks = [m for m in result.messages if m.role == "user" and "Read first" in m.content]
    assert len(asks) == 1 and "call open" in asks[0].content
    reading = model.requests[2]  # the turn after the request: only the reading tool, and a call is required
    assert [t.name for t in reading[1]] == ["open"] and reading[2].get("tool_choice") == "required"
    skimmed = Agent(ScriptedModel(_skims), mini_corpus.tools(), budget).run("Who?")
    assert skimmed.answer == "skim" and skimmed.usage.tool_calls == {"search": 1}  # the default does not ask
    spent = Agent(
        ScriptedModel(_skims), mini_corpus.tools(), Budget(tool_calls={"search": 3, "open": 0}), options=reads
    ).run("?")
    assert spent.answer == "skim"  # nothing to read with: no request


def test_min_reads_asks_for_a_second_document_once_while_a_reader_is_funded(mini_corpus):
    from budgetgraph.agents.planners import planner_options
    from budgetgraph.errors import ConfigError

    two = AgentOptions(min_reads=2)
    model = ScriptedModel(_reads_what_it_is_asked)
    budget = Budget(tool_calls={"search": 3, "open": 3})
    result = Agent(model, mini_corpus.tools(), budget, planner="tracker", options=two).run("Who?")
    assert result.usage.tool_calls == {"search": 1, "open": 2} and result.answer == "after 2 reads"
    opened = [c.arguments["title"] for m in result.messages for c in m.tool_calls if c.name == "open"]
    assert len(set(opened)) == 2
    asks = [m.content for m in result.messages if m.role == "user"][1:]
    assert len(asks) == 2 and "Read first" in asks[0] and "read one more" in asks[1]
    second_read = model.requests[4]  # after the second request: only the reader, and a call is required
    assert [t.name for t in second_read[1]] == ["open"] and second_read[2].get("tool_choice") == "required"
    # one open funded: nothing to read the second with, so the answer after the first read is taken
    short = Agent(
        ScriptedModel(_reads_what_it_is_asked),
        mini_corpus.tools(),
        Budget(tool_calls={"search": 3, "open": 1}),
        options=two,
    ).run("Who?")
    assert short.answer == "after 1 reads" and short.usage.tool_calls == {"search": 1, "open": 1}
    # read_first alone asks for one document only
    one = Agent(
        ScriptedModel(_reads_what_it_is_asked),
        mini_corpus.tools(),
        budget,
        options=AgentOptions(read_first=True),
    ).run("Who?")
    assert one.answer == "after 1 reads" and one.usage.tool_calls == {"search": 1, "open": 1}
    assert planner_options("tracker[read_first=true;min_reads=2]")[1].min_reads == 2
    with pytest.raises(ConfigError, match="min_reads must be a whole number >= 1"):
        AgentOptions(min_reads=0)
    # min_reads alone asks for reading (the label of the kept min_reads sweep means what it meant)
    alone = Agent(
        ScriptedModel(_reads_what_it_is_asked), mini_corpus.tools(), budget, options=AgentOptions(min_reads=2)
    )
    assert alone.run("Who?").answer == "after 2 reads"


def test_the_first_turn_sees_the_budget_block_without_keeping_it(mini_corpus):
    model = ScriptedModel(_skims)
    budget = Budget(tool_calls={"search": 3, "open": 2})
    intro = AgentOptions(budget_intro=True)
    result = Agent(model, mini_corpus.tools(), budget, planner="tracker", options=intro).run(
        "Who designed the Apple Remote?"
    )
    first_prompt = model.requests[0][0]
    system = first_prompt[0].content  # the first turn's block is in the system prompt, never in the question
    assert "<budget>" in system and "search: used 0, remaining 3 of 3 (at most 2 queries" in system
    assert first_prompt[-1].content == "Who designed the Apple Remote?"  # the question as asked, and no more
    assert "remaining 3 of 3" not in model.requests[1][0][0].content  # later: the block follows each result
    question = next(m for m in result.messages if m.role == "user")
    assert question.content == "Who designed the Apple Remote?"  # the history keeps the question as asked
    plain = ScriptedModel(_skims)
    Agent(plain, mini_corpus.tools(), budget, planner="react").run("Who?")
    assert not any("<budget>" in m.content for m in plain.requests[0][0])  # react shows no budget


def test_a_reply_with_only_an_estimate_is_asked_to_read_first(mini_corpus):
    """The 1.5B model ends its reply after the estimate: with a reading tool funded, it is asked to read."""

    def estimates_then_stops(messages, tools):
        results = [m for m in messages if m.role == "tool"]
        if not results:
            return ScriptedModel.tool_calls([("search", {"queries": ["Apple Remote"]})])
        if (reading := _read_when_asked(messages, results)) is not None:
            return reading
        if len(results) == 1:
            return Message.assistant("<need>search=1, open=1</need>")
        return ScriptedModel.text("<need>none</need><answer>read it</answer>")

    budget = Budget(tool_calls={"search": 3, "open": 2})
    agent = Agent(
        ScriptedModel(estimates_then_stops),
        mini_corpus.tools(),
        budget,
        options=AgentOptions(budget_stop=True, read_first=True),
    )
    result = agent.run("Who designed the Apple Remote?")
    assert result.usage.tool_calls == {"search": 1, "open": 1} and result.answer == "read it"
    assert [e["need"] for e in result.details["estimates"]] == [{"search": 1, "open": 1}, "none"]


def test_a_reply_with_only_a_fitting_estimate_goes_on_with_a_forced_call(mini_corpus):
    """After reading, a reply that is only ``<need>search=1</need>`` is a step still to take: the next turn
    must call a tool (the 1.5B model's need-only replies used to end the run unanswered)."""
    from budgetgraph.agents.loop.features import GO_ON

    def needs_one_more(messages, tools):
        results = [m for m in messages if m.role == "tool"]
        if not results:
            return ScriptedModel.tool_calls([("search", {"queries": ["Apple Remote"]})])
        if len(results) == 1:
            return ScriptedModel.tool_calls([("open", {"title": "Apple Remote"})])
        if messages[-1].role == "user" and messages[-1].content == GO_ON:
            return ScriptedModel.tool_calls([("search", {"queries": ["Front Row"]})])
        if len(results) == 2:
            return Message.assistant("<need>search=1</need>")
        return ScriptedModel.text("<answer>read it</answer>")

    model = ScriptedModel(needs_one_more)
    budget = Budget(tool_calls={"search": 3, "open": 2})
    agent = Agent(model, mini_corpus.tools(), budget, options=AgentOptions(budget_stop=True))
    result = agent.run("Who designed the Apple Remote?")
    assert result.usage.tool_calls == {"search": 2, "open": 1} and result.answer == "read it"
    assert result.stop_reason.kind == "answered"
    forced = [
        settings.get("tool_choice") for msgs, _, settings in model.requests if msgs[-1].content == GO_ON
    ]
    assert forced and forced[0] not in (None, "auto", "none")  # the turn after the estimate must call
    off = ScriptedModel(needs_one_more)
    plain = Agent(off, mini_corpus.tools(), budget).run("Who designed the Apple Remote?")
    assert plain.usage.tool_calls == {"search": 1, "open": 1}  # without the option an estimate is just text


def test_an_estimate_that_always_fits_goes_on_once_not_to_the_end_of_the_budget(mini_corpus):
    """A model that asks for one more read after every document would spend every funded read: one need-only
    reply goes on, the next goes to the answer."""
    from budgetgraph.agents.loop.features import GO_ON, GO_ON_LIMIT

    def one_more_every_time(messages, tools):
        results = [m for m in messages if m.role == "tool"]
        if not results:
            return ScriptedModel.tool_calls([("search", {"queries": ["Apple Remote"]})])
        if len(results) == 1 or messages[-1].content == GO_ON:
            return ScriptedModel.tool_calls([("open", {"title": "Apple Remote"})])
        if not tools:  # the answer step
            return ScriptedModel.text("<answer>Jony Ive</answer>")
        return Message.assistant("<need>open=1</need>")

    budget = Budget(tool_calls={"search": 3, "open": 5})
    agent = Agent(
        ScriptedModel(one_more_every_time),
        mini_corpus.tools(),
        budget,
        options=AgentOptions(budget_stop=True),
    )
    result = agent.run("Who designed the Apple Remote?")
    went = [m for m in result.messages if m.role == "user" and m.content == GO_ON]
    assert GO_ON_LIMIT == 1 and len(went) == 1
    assert result.usage.tool_calls == {"search": 1, "open": 2} and result.answer == "Jony Ive"
    assert [e["need"] for e in result.details["estimates"]] == [{"open": 1}, {"open": 1}]


def test_pace_holds_a_small_cap_to_the_blocks_share_of_each_turn():
    from budgetgraph.tools import Tool

    seen: list[list[str]] = []

    async def batch(queries: list[str]) -> str:
        """Search several queries.

        Args:
            queries: the queries
        """
        seen.append(list(queries))
        return " | ".join(f"hit for {q}" for q in queries)

    def fn(msgs, tools):
        turn = sum(m.role == "assistant" for m in msgs)
        if turn >= 2:
            return ScriptedModel.text("<answer>done</answer>")
        return ScriptedModel.tool_calls(
            [("batch", {"queries": [f"t{turn}a", f"t{turn}b", f"t{turn}c"]}), ("batch", {"queries": ["x"]})]
        )

    tools = [Tool(batch, units="queries")]
    budget = Budget(tool_calls={"batch": 3})
    model = ScriptedModel(fn)
    result = Agent(
        model, tools, budget, planner="tracker", options=AgentOptions(pace=True, budget_intro=True)
    ).run("q")
    # 3 of 3 left is HIGH: at most 2 queries this turn, as the block says; the second call waits
    assert seen[0] == ["t0a", "t0b"] and ["x"] not in seen[:1]
    assert "at most 2 queries this turn" in model.requests[0][0][0].content  # the first turn's block
    notes = [m.content for m in result.messages if m.role == "tool"]
    assert notes[0].startswith("[Budget: this turn allows 2 queries; the first 2 of 3 were run")
    assert "allows no more batch this turn" in notes[1] and "not charged" in notes[1]
    # the next turn has 1 left: one query, then the cap is spent, never overshot
    assert seen[1] == ["t1a"] and result.usage.tool_calls == {"batch": 3}
    seen.clear()
    unpaced = Agent(ScriptedModel(fn), tools, budget, planner="tracker").run("q")
    assert seen[0] == ["t0a", "t0b", "t0c"] and unpaced.usage.tool_calls == {"batch": 3}  # off by default


def test_a_label_option_that_is_not_true_or_false_is_an_error_not_false():
    from budgetgraph.agents.planners import parse_planner
    from budgetgraph.errors import ConfigError

    assert parse_planner("tracker[pace=true;budget_stop=on]") == (
        "tracker",
        {"pace": True, "budget_stop": True},
    )
    assert parse_planner("tracker[pace=no]") == ("tracker", {"pace": False})
    with pytest.raises(ConfigError, match=r"pace must be true or false, got 'true,budget_stop=true'.*';'"):
        parse_planner("tracker[pace=true,budget_stop=true]")
