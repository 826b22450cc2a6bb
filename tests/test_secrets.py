"""One redaction rule for everything that leaves the process: a credential a tool's error, a store URL or a
backend's error body carries never reaches the model, a transcript, a results file, SSE or a span."""

from __future__ import annotations

import asyncio
import json

import pytest

from budgetgraph import Agent, RedisBudgetStore, ScriptedModel, tool
from budgetgraph._redact import redact, redact_url, remember_secret
from budgetgraph.agents import event_to_json
from budgetgraph.budget import SharedAccount
from budgetgraph.errors import ToolCallError

PW = "Canary-Passw0rd-7731"


@pytest.mark.parametrize(
    "text",
    [
        f"redis://127.0.0.1:6379/0?password={PW}",
        f"unix:///run/redis.sock?db=0&password={PW}",
        f"redis://:{PW}@127.0.0.1:6379/0",
        f"redis://default:p@ss{PW}@127.0.0.1:6379/0",  # an unescaped '@' in the password
        f"https://searx.example/search?q=x&token={PW}",
        f"GET https://api.example/v1?api_key={PW}&q=1 failed",
        f'{{"error": "bad request", "echo": {{"X-Subscription-Token": "{PW}"}}}}',
        f"Authorization: Bearer {PW}",
    ],
)
def test_every_form_of_a_credential_is_masked(text):
    assert PW not in redact(text) and "***" in redact(text)


def test_what_is_not_a_secret_is_left_alone():
    for text in [
        "see https://example.com/a@b for the docs",
        "mail user@example.com",
        "the password is masked; key=value pairs",
        "https://example.com/search?q=budget&page=2",
    ]:
        assert redact(text) == text


def test_a_secret_given_to_a_backend_is_masked_wherever_it_is_echoed():
    key = "BSAunrecognisedShapeKey42"
    assert redact(f"the API said: your key {key} is wrong") == f"the API said: your key {key} is wrong"
    remember_secret(key)
    assert key not in redact(f"the API said: your key {key} is wrong")
    remember_secret("short")  # too short to remember: it would mask words
    assert redact("a short word") == "a short word"


def test_store_urls_show_no_password_in_repr_describe_or_a_results_header():
    url = f"redis://127.0.0.1:6399/0?password={PW}"
    shared = SharedAccount(url, "sweep", "usd=1")
    store = RedisBudgetStore(url)  # no connection is made until it is used
    for shown in (repr(shared), json.dumps(shared.describe()), repr(store), json.dumps(store.describe())):
        assert PW not in shown, shown
    assert redact_url(url).endswith("password=***")


def _agent(checkpoint_seen: list[str]) -> Agent:
    @tool
    def search(q: str) -> str:
        """Search."""
        raise ToolCallError(f"SearXNG at http://admin:{PW}@127.0.0.1:1 is unreachable")

    def reply(messages, tools):
        checkpoint_seen.extend(m.content for m in messages)
        if any(m.role == "tool" for m in messages):
            return ScriptedModel.text("<answer>none</answer>")
        return ScriptedModel.tool_calls([("search", {"q": "x"})])

    return Agent(ScriptedModel(reply), [search], "search=2", planner="react")


def test_a_tool_error_reaches_neither_the_model_nor_the_transcript_nor_sse():
    sent: list[str] = []
    agent = _agent(sent)
    result = agent.run("q")
    assert any("is unreachable" in text for text in sent)  # the error itself reached the model
    assert not any(PW in text for text in sent)  # its password did not
    assert PW not in json.dumps(result.to_dict())

    async def stream() -> list[str]:
        return [event_to_json(e) async for e in _agent([]).astream("q")]

    events = asyncio.run(stream())
    assert events and not any(PW in e for e in events)


def test_a_results_file_never_holds_a_secret(tmp_path, monkeypatch):
    from budgetgraph.envs.results import ResultsFile

    monkeypatch.setenv("MY_SEARCH_TOKEN", "EnvCanary-55173")  # a secret-named variable's value
    results = ResultsFile(tmp_path / "r.jsonl")
    results.open({"config": {"store": f"redis://h/0?password={PW}"}, "config_digest": "x"})
    results.append(
        {
            "type": "episode",
            "answer": "the token is EnvCanary-55173",
            "transcript": [{"content": f"fetched https://u:{PW}@intranet/x"}],
        }
    )
    results.close()
    written = (tmp_path / "r.jsonl").read_text()
    assert PW not in written and "EnvCanary-55173" not in written and "***" in written


def test_span_exception_events_are_redacted():
    sdk = pytest.importorskip("opentelemetry.sdk.trace", reason="the otel extra is not installed")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from budgetgraph import tracing

    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable_tracing(provider)
    try:
        with pytest.raises(RuntimeError), tracing.span("call", {"url": f"http://u:{PW}@h/v1"}):
            raise RuntimeError(f"the server echoed Authorization: Bearer sk-{PW}abcdefgh")
    finally:
        tracing.disable_tracing()
    (span,) = exporter.get_finished_spans()
    shown = json.dumps(
        {
            "attributes": dict(span.attributes or {}),
            "events": [dict(e.attributes or {}) for e in span.events],
            "status": span.status.description,
        }
    )
    assert "exception" in [e.name for e in span.events] and PW not in shown, shown
