"""OpenTelemetry spans (otel extra): off by default; on, one span per run, model call and tool call."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.sdk", reason="tracing needs pip install 'budgetgraph[otel]'")

from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from budgetgraph import Agent, Budget, tool  # noqa: E402
from budgetgraph import tracing as bg_tracing  # noqa: E402
from budgetgraph.models import ScriptedModel  # noqa: E402


@tool(price="0.001")
def lookup(key: str) -> str:
    """Look a key up."""
    return f"value of {key}"


def _agent():
    def policy(messages, tools):
        if not any(m.role == "tool" for m in messages):
            return ScriptedModel.tool_calls([("lookup", {"key": "a"})])
        return ScriptedModel.text("<answer>value of a</answer>")

    return Agent(ScriptedModel(policy), [lookup], Budget(tool_calls={"lookup": 2}, usd="0.01"))


def test_no_spans_unless_enabled():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _agent().run("q")
    assert exporter.get_finished_spans() == () and not bg_tracing.tracing_enabled()


def test_spans_with_genai_attributes_and_budget_figures():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    bg_tracing.enable_tracing(provider)
    try:
        result = _agent().run("q")
    finally:
        bg_tracing.disable_tracing()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"invoke_agent tracker", "chat scripted", "execute_tool lookup"}
    run, chat, call = spans["invoke_agent tracker"], spans["chat scripted"], spans["execute_tool lookup"]
    assert chat.parent.span_id == run.context.span_id and call.parent.span_id == run.context.span_id
    assert (
        chat.attributes["gen_ai.operation.name"] == "chat"
        and chat.attributes["gen_ai.usage.input_tokens"] > 0
    )
    assert (
        call.attributes["gen_ai.tool.name"] == "lookup"
        and call.attributes["budgetgraph.tool.cost_usd"] == 0.001
    )
    assert run.attributes["budgetgraph.budget.tool:lookup.limit"] == 2.0
    assert run.attributes["budgetgraph.budget.tool:lookup.spent"] == 1.0
    assert run.attributes["gen_ai.usage.output_tokens"] == result.usage.output_tokens
