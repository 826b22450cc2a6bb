"""The real embedded model (llama.cpp + Qwen2.5-Coder-1.5B Q4) over a real HotpotQA corpus."""

from __future__ import annotations

import asyncio

import pytest

from budgetgraph import Agent, Budget
from budgetgraph.models.local import LocalModel
from budgetgraph.models.messages import Message

pytestmark = pytest.mark.model

llama_cpp = pytest.importorskip(
    "llama_cpp", reason="the embedded model needs pip install 'budgetgraph[local]'"
)


@pytest.fixture(scope="module")
def model() -> LocalModel:
    return LocalModel()


@pytest.fixture(scope="module")
def small() -> LocalModel:
    """The 0.5B sibling, for tests of llama.cpp's plumbing rather than of answers: the default model's code path
    in less time."""
    from budgetgraph.models.local_assets import embedded_model_path

    return LocalModel(embedded_model_path("0.5b"))


def test_token_count_before_the_call_equals_the_usage_after(model, mini_corpus):
    tools = [t.schema for t in mini_corpus.tools()]
    messages = [Message.system("Answer with the tools."), Message.user("Who designed the Apple Remote?")]
    counted = model.count_tokens(messages, tools)
    response = asyncio.run(model.request(messages, tools, {"max_tokens": 64, "tool_choice": "required"}))
    assert response.usage.input_tokens == counted
    assert response.message.tool_calls and response.message.tool_calls[0].name in ("search", "open")
    assert 0 < response.usage.output_tokens <= 64


def test_usage_counts_the_prompt_tokens_reused_from_the_prefix_cache(model):
    import uuid

    system = Message.system(f"Session {uuid.uuid4().hex}. " + "Answer in one word. " * 40)
    first, second = (
        asyncio.run(model.request([system, Message.user(q)], [], {"max_tokens": 4}))
        for q in ("Capital of France?", "Capital of Italy?")
    )
    assert first.usage.cached_input_tokens == 0  # a new prefix: nothing to reuse
    assert 64 <= second.usage.cached_input_tokens < second.usage.input_tokens
    assert second.usage.cached_input_tokens % 64 == 0  # whole aligned ubatches only


def test_streamed_text_equals_the_reply_and_usage_is_unchanged(small, mini_corpus):
    from budgetgraph.models.base import text_sink

    model = small

    async def ask(messages, tools, stream):
        pieces: list[str] = []
        token = text_sink.set(pieces.append)
        try:
            settings = {"max_tokens": 96, "stream": stream, "tool_choice": "auto"}
            return await model.request(messages, tools, settings), pieces
        finally:
            text_sink.reset(token)

    chat = [Message.user("Name three rivers in France, one per line, and say which is longest.")]
    plain, none = asyncio.run(ask(chat, [], False))
    streamed, pieces = asyncio.run(ask(chat, [], True))
    assert none == [] and len(pieces) > 5
    assert "".join(pieces) == streamed.message.content == plain.message.content
    assert streamed.usage == plain.usage

    tools = [t.schema for t in mini_corpus.tools()]
    call = [Message.system("Use the search tool."), Message.user("Search for: Apple Remote designer")]
    response, pieces = asyncio.run(ask(call, tools, True))
    if response.message.tool_calls:  # the call itself is never streamed as text
        assert "<tool_call>" not in "".join(pieces)


def test_end_to_end_agent_over_hotpot_paragraphs_under_a_budget(model, hotpot20, hotpot_corpus):
    tools = hotpot_corpus.tools(k=3, max_chars=1500)
    budget = Budget(tool_calls={"search": 2, "open": 2}, total_tokens=12000)
    agent = Agent(model=model, tools=tools, budget=budget, planner="tracker", max_tokens=256)
    question = hotpot20[0]["question"]
    result = agent.run(question)
    u = result.usage
    assert result.answer is not None and 0 < len(result.answer) < 300
    assert u.tool_calls.get("search", 0) <= 2 and u.tool_calls.get("open", 0) <= 2
    assert u.total_tokens <= 12000 and u.llm_calls >= 1 and u.input_tokens > 0
    assert result.stop_reason.kind in ("answered", "budget_exhausted", "max_turns")
    tool_msgs = [m for m in result.messages if m.role == "tool"]
    assert tool_msgs, "the model should use the corpus at least once"
    assert all("<budget>" in m.content for m in tool_msgs)
    print(
        f"\nQ: {question}\nA: {result.answer} (gold: {hotpot20[0]['answer']})\nstop: {result.stop_reason}\n"
        f"usage: {u.to_dict()}\nlocal stats: turns={model.stats.turns} "
        f"parse_failure_rate={model.stats.parse_failure_rate:.2f} median_turn={model.stats.median_latency:.1f}s"
    )


def test_eval_runner_with_the_embedded_model_on_bfcl(tmp_path):
    """The runner end to end on the real model: two BFCL items, scored and logged. (The runner on HotpotQA with
    the real model runs in CI's README step, `eval qa`; the agent on HotpotQA is the test above.)"""
    import json

    from conftest import DATA

    from budgetgraph.envs import EvalSpec, run_eval

    if not (DATA / "bfcl").exists():
        pytest.skip(f"shared data not found at {DATA / 'bfcl'}")
    bfcl = tmp_path / "bfcl.jsonl"
    spec = EvalSpec(
        env="bfcl",
        env_options={"data": str(DATA / "bfcl" / "BFCL_v4_simple_python.json")},
        model="local",
        planners=("single_call",),
        budgets=("none",),
        limit=2,
        concurrency=1,
    )
    summary = asyncio.run(run_eval(spec, bfcl, progress=False))
    assert (summary.ran, summary.errors) == (2, 0)
    rows = [json.loads(line) for line in bfcl.read_text().splitlines()[1:]]
    # the 1.5B model gets these two easy items right (triangle area, factorial) when tool calling works
    assert [r["scores"]["correct"] for r in rows] == [1.0, 1.0], [r["answer"] for r in rows]


def _last_logits(engine, tokens):
    """Evaluate ``tokens`` as a completion does (prefix reuse first) and return the last token's logits."""
    import numpy as np

    engine.prefix.prepare(tokens)
    engine.llm.eval(tokens[engine.llm.n_tokens :])
    engine.prefix.finished(tokens)
    return np.ctypeslib.as_array(engine.llm._ctx.get_logits(), shape=(engine.llm.n_vocab(),)).copy()


def test_logits_are_bit_identical_whatever_the_prompt_cache_held():
    """A prompt evaluated in a cold context and the same prompt after other prompts, after itself and as the
    second turn of a conversation give the same logits to the last bit (so the same replies at temperature 0).
    Stock prefix reuse (evaluate only the new tail) does not: that is printed for comparison."""
    from budgetgraph.models.local import _Engine

    def chat(*turns):
        parts = [f"<|im_start|>{role}\n{text}<|im_end|>\n" for role, text in turns]
        return "".join(parts) + "<|im_start|>assistant\n"

    doc = "The ledger reserves an upper bound before every call and commits the truth after it. " * 12
    first = chat(("system", "You answer briefly."), ("user", doc + "What does the ledger do?"))
    other = chat(("system", "You answer briefly."), ("user", "Name three rivers in France."))
    second = (
        first + "It reserves, then commits.<|im_end|>\n" + chat(("user", "And when a call does not fit?"))[0:]
    )
    from budgetgraph.models.local_assets import embedded_model_path

    path = embedded_model_path("0.5b")  # llama.cpp's state handling is under test, not the model's answers

    def engine(cache):
        return _Engine(path, 2048, None, cache)

    engines = []
    try:
        cold = {}
        for name, prompt in (("first", first), ("second", second)):
            fresh = engine(0)
            engines.append(fresh)
            cold[name] = _last_logits(fresh, fresh.tokens(prompt))
        warm = engine(64 << 20)
        engines.append(warm)
        t_first, t_other, t_second = (warm.tokens(p) for p in (first, other, second))
        seen = {
            "first, cold": _last_logits(warm, t_first),
            "first again (live prefix)": _last_logits(warm, t_first),
            "other": _last_logits(warm, t_other),
            "first after other (saved state)": _last_logits(warm, t_first),
            "second turn (prefix of the first)": _last_logits(warm, t_second),
        }
        assert warm.prefix.loads >= 1, "the saved prompt state should have been restored"
        for label, logits in seen.items():
            ref = cold["second"] if label.startswith("second") else cold["first"]
            if label != "other":
                assert (logits == ref).all(), f"{label}: logits differ from a cold evaluation"
        # the stock path for comparison: the whole prompt cached, only its last token evaluated again
        warm.llm.n_tokens = len(t_first) - 1
        warm.llm.eval(t_first[-1:])
        import numpy as np

        stock = np.ctypeslib.as_array(warm.llm._ctx.get_logits(), shape=(warm.llm.n_vocab(),))
        print(f"\nstock reuse of the cached prompt: max |logit diff| {abs(stock - cold['first']).max():.3g}")
    finally:
        for e in engines:
            e.llm.close()


def test_saved_prompt_states_are_bounded_by_all_they_hold():
    from budgetgraph.models.local import _Engine
    from budgetgraph.models.local_prefix import state_bytes

    cap = 12 << 20  # room for 3 of the 6 states (about 3.8 MB each: 112 tokens of KV at 28 KiB, ids, logits)
    engine = _Engine(LocalModel().path, 2048, None, cap)
    try:
        for i in range(6):
            prompt = f"<|im_start|>user\n{'Count slowly. ' * 30}From {i} to {i + 5}.<|im_end|>\n<|im_start|>assistant\n"
            engine.generate(prompt, {"max_tokens": 8}, None)
        saved = list(engine.prefix.saved.values())
        assert saved and all(s.state.scores.shape[0] == 1 for s in saved)
        assert engine.prefix.saved_bytes == sum(state_bytes(s.state) for s in saved) <= cap
        assert len(saved) == 3  # the cap evicted the oldest
    finally:
        engine.llm.close()


def test_gpu_layers_and_threads_come_from_the_environment_and_a_bad_value_is_named(monkeypatch):
    from budgetgraph.errors import ConfigError

    monkeypatch.setenv("BUDGETGRAPH_GPU_LAYERS", "-1")
    assert LocalModel().n_gpu_layers == -1
    assert LocalModel(n_gpu_layers=0).n_gpu_layers == 0
    monkeypatch.setenv("BUDGETGRAPH_GPU_LAYERS", "all")
    with pytest.raises(ConfigError, match="BUDGETGRAPH_GPU_LAYERS='all'"):
        LocalModel()
    monkeypatch.delenv("BUDGETGRAPH_GPU_LAYERS")
    monkeypatch.setenv("BUDGETGRAPH_THREADS", "1")
    assert LocalModel().n_threads == 1 and LocalModel(n_threads=2).n_threads == 2
    monkeypatch.setenv("BUDGETGRAPH_THREADS", "0")
    with pytest.raises(ConfigError, match="BUDGETGRAPH_THREADS='0' is not a positive integer"):
        LocalModel()


def test_a_forced_structured_call_follows_its_schema(model):
    """BATS's plan on the real model: the grammar built from the tool's schema gives a plan that parses (the
    generic JSON grammar let the 1.5B model wrap it in {"planOut": ...} and loop until max_tokens)."""
    from budgetgraph.planners.bats import PLAN, SYSTEM, PlanOut, parse_structured, schema_tool

    tool = schema_tool("submit_plan", PlanOut, "Submit the plan.")
    question = "Aside from the Apple Remote, what other device can control the program Apple Remote was designed for?"
    prompt = PLAN.format(question=question, context="", budget="search 5 of 5 left, open 5 of 5 left")
    messages = [Message.system(SYSTEM), Message.user(prompt)]
    settings = {"max_tokens": 300, "tool_choice": "submit_plan", "temperature": 0.0}
    response = asyncio.run(model.request(messages, [tool], settings))
    (call,) = response.message.tool_calls
    assert list(call.arguments) == ["exploration", "verification", "steps"]
    plan = parse_structured(PlanOut, call.arguments)
    assert isinstance(plan, PlanOut) and 1 <= len(plan.steps) <= 5


def test_a_cancelled_call_stops_llama_cpp_at_its_next_token(model):
    """Ctrl-C (or an app's timeout) cancels the await; the thread must not run the rest of a long reply."""
    import time

    essay = [Message.user("Write a long, detailed essay on the history of rivers in Europe.")]

    async def cancel_then_ask() -> tuple[float, str]:
        call = asyncio.ensure_future(model.request(essay, [], {"max_tokens": 400}))
        await asyncio.sleep(3.0)  # well into the reply: 400 tokens take far longer on a CPU
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        cancelled = time.monotonic()
        # the engine is serialised: this call starts only once the cancelled one has let go of it
        reply = await model.request([Message.user("Say OK.")], [], {"max_tokens": 2})
        return time.monotonic() - cancelled, reply.message.content

    waited, text = asyncio.run(cancel_then_ask())
    assert text  # the engine still answers after an interrupted call
    # a whole 400-token reply would hold the engine for tens of seconds; a stop at the next token does not
    assert waited < 8.0, f"the next call waited {waited:.1f} s for the cancelled one"
