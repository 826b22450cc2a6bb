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
from budgetgraph.tools import Tool, Used  # noqa: E402


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
    assert run.attributes["budgetgraph.budget.tool.lookup.limit"] == 2.0
    assert run.attributes["budgetgraph.budget.tool.lookup.used"] == 1.0
    assert run.attributes["budgetgraph.budget.tool.lookup.remaining"] == 1.0
    assert run.attributes["budgetgraph.budget.usd.remaining"] == pytest.approx(0.009)
    assert (
        run.attributes["budgetgraph.stop.kind"] == "answered"
        and "budgetgraph.stop.resource" not in run.attributes
    )
    assert run.attributes["gen_ai.usage.output_tokens"] == result.usage.output_tokens


def test_metrics_and_a_reported_tool_cost_read_back_from_the_sdk():
    from decimal import Decimal

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    def billed(key: str) -> Used:
        """A paid look-up that reports what it billed."""
        return Used(f"value of {key}", cost="0.0004")

    def policy(messages, tools):
        if not any(m.role == "tool" for m in messages):
            return ScriptedModel.tool_calls([("billed", {"key": "a"})])
        return ScriptedModel.text("<answer>value of a</answer>")

    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    bg_tracing.enable_tracing(provider, MeterProvider(metric_readers=[reader]))
    try:
        agent = Agent(
            ScriptedModel(policy), [Tool(billed, price="0.001")], "billed=2,usd=0.01", planner="react"
        )
        result = agent.run("q")
    finally:
        bg_tracing.disable_tracing()
    assert result.usage.usd == Decimal("0.0004")
    call = next(s for s in exporter.get_finished_spans() if s.name == "execute_tool billed")
    assert call.attributes["budgetgraph.tool.cost_usd"] == pytest.approx(0.0004)
    assert call.attributes["budgetgraph.tool.cost_reported"] is True
    points: dict[str, list] = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                points[metric.name] = list(metric.data.data_points)
    assert set(points) == set(bg_tracing.METRICS)
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in points["gen_ai.client.token.usage"]}
    assert tokens == {"input": result.usage.input_tokens, "output": result.usage.output_tokens}
    cost = {p.attributes["budgetgraph.source"]: p.value for p in points["budgetgraph.cost"]}
    assert cost == {"tool.billed": pytest.approx(0.0004)}  # the scripted model is free
    used = {p.attributes["budgetgraph.budget.resource"]: p.value for p in points["budgetgraph.budget.used"]}
    left = {
        p.attributes["budgetgraph.budget.resource"]: p.value for p in points["budgetgraph.budget.remaining"]
    }
    assert used == {"tool.billed": 1.0, "usd": pytest.approx(0.0004)}
    assert left == {"tool.billed": 1.0, "usd": pytest.approx(0.0096)}
    (runs,) = points["budgetgraph.runs"]
    assert runs.value == 1 and runs.attributes["budgetgraph.stop.kind"] == "answered"
