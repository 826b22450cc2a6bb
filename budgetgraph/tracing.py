"""Optional OpenTelemetry spans and metrics (``otel`` extra), off by default: one span per run, model call and
tool call, with GenAI semantic-convention attributes and the budget figures under the names of
:data:`BUDGET_ATTRIBUTES`; with a meter provider, the GenAI token-usage histogram, dollars by source, and
each run's budget figures and stop kind.

    from budgetgraph.tracing import enable_tracing
    enable_tracing()            # the global tracer (and meter) providers, or pass your own
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ._extras import require
from ._redact import redact

__all__ = [
    "BUDGET_ATTRIBUTES",
    "METRICS",
    "disable_tracing",
    "enable_tracing",
    "event",
    "record_cost",
    "record_run",
    "record_tokens",
    "span",
    "tracing_enabled",
]

BUDGET_ATTRIBUTES = {
    "budgetgraph.budget.<resource>.limit": "the cap (a tool as tool.<name>; dollars as a float)",
    "budgetgraph.budget.<resource>.used": "what the run spent of it (in-flight reservations not included)",
    "budgetgraph.budget.<resource>.remaining": "the cap less what is spent and reserved",
    "budgetgraph.stop.kind": "answered | budget_exhausted | stopped_early | overrun | interrupted | ...",
    "budgetgraph.stop.resource": "the budget that ended (or paused) the run, when one did",
    "budgetgraph.usd": "the run's dollars (model and tools); GenAI has no merged cost attribute yet",
    "budgetgraph.tool.cost_usd": "a tool call's dollars: its price, or the cost the tool reported",
}
"""Our attribute names, beside the GenAI semantic-convention ones (``gen_ai.usage.input_tokens`` ...)."""

METRICS = {
    "gen_ai.client.token.usage": "histogram of tokens per model call, by gen_ai.token.type (input, output)",
    "budgetgraph.cost": "counter of dollars, by budgetgraph.source (the model, or tool.<name>)",
    "budgetgraph.budget.used": "gauge of each capped resource's use at a run's end, by budgetgraph.budget.resource",
    "budgetgraph.budget.remaining": "gauge of what was left of it at a run's end",
    "budgetgraph.runs": "counter of runs, by budgetgraph.stop.kind",
}
"""The metrics recorded when :func:`enable_tracing` is given (or finds) a meter provider."""

_tracer: Any = None
_instruments: dict[str, Any] = {}


def enable_tracing(tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Start emitting spans through ``tracer_provider`` and metrics through ``meter_provider`` (defaults:
    OpenTelemetry's global providers)."""
    global _tracer
    require("opentelemetry.trace", "otel")
    from opentelemetry import metrics, trace

    provider = tracer_provider or trace.get_tracer_provider()
    _tracer = provider.get_tracer("budgetgraph")
    meter = (meter_provider or metrics.get_meter_provider()).get_meter("budgetgraph")
    _instruments.clear()
    _instruments.update(
        {
            "tokens": meter.create_histogram(
                "gen_ai.client.token.usage", unit="{token}", description=METRICS["gen_ai.client.token.usage"]
            ),
            "cost": meter.create_counter(
                "budgetgraph.cost", unit="USD", description=METRICS["budgetgraph.cost"]
            ),
            "used": meter.create_gauge(
                "budgetgraph.budget.used", description=METRICS["budgetgraph.budget.used"]
            ),
            "remaining": meter.create_gauge(
                "budgetgraph.budget.remaining", description=METRICS["budgetgraph.budget.remaining"]
            ),
            "runs": meter.create_counter("budgetgraph.runs", description=METRICS["budgetgraph.runs"]),
        }
    )


def disable_tracing() -> None:
    global _tracer
    _tracer = None
    _instruments.clear()


def record_tokens(model: str, input_tokens: int, output_tokens: int) -> None:
    """One model call's tokens on the GenAI token-usage histogram."""
    if histogram := _instruments.get("tokens"):
        base = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model}
        histogram.record(input_tokens, {**base, "gen_ai.token.type": "input"})
        histogram.record(output_tokens, {**base, "gen_ai.token.type": "output"})


def record_cost(source: str, usd: float) -> None:
    """Dollars charged to ``source`` (a model's name, or ``tool.<name>``)."""
    if usd and (counter := _instruments.get("cost")):
        counter.add(usd, {"budgetgraph.source": source})


def record_run(ledger: Any, stop_kind: str, agent: str) -> None:
    """A finished run: its stop kind, and each capped resource's use and what was left."""
    if not _instruments:
        return
    _instruments["runs"].add(1, {"budgetgraph.stop.kind": stop_kind, "gen_ai.agent.name": agent})
    for key in ledger.limits:
        where = {"budgetgraph.budget.resource": _resource(key), "gen_ai.agent.name": agent}
        _instruments["used"].set(float(ledger.spent(key)), where)
        _instruments["remaining"].set(float(ledger.remaining(key) or 0), where)


def tracing_enabled() -> bool:
    return _tracer is not None


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if value is None:
            continue
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            out[key] = tuple(redact(v) for v in value)  # a string array (gen_ai.response.finish_reasons)
        else:
            out[key] = value if isinstance(value, bool | int | float) else redact(str(value))
    return out


@contextmanager
def span(name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Any]:
    """A span when tracing is on (yields it, so callers can add attributes after the call), else ``None``."""
    if _tracer is None:
        yield None
        return
    with _tracer.start_as_current_span(
        name, attributes=_clean(attributes or {}), record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield current
        except BaseException as exc:  # recorded as OpenTelemetry would, through the one redaction rule
            said = redact(str(exc))
            current.add_event(
                "exception",
                {
                    "exception.type": type(exc).__qualname__,
                    "exception.message": said,
                    "exception.escaped": True,
                },
            )
            if isinstance(exc, Exception):
                from opentelemetry.trace import Status, StatusCode

                current.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {said}"))
            raise


def set_attributes(current: Any, attributes: Mapping[str, Any]) -> None:
    if current is not None:
        current.set_attributes(_clean(attributes))


def _resource(key: str) -> str:
    return "tool." + key[len("tool:") :] if key.startswith("tool:") else key


def budget_attributes(ledger: Any) -> dict[str, Any]:
    """``budgetgraph.budget.<resource>.limit`` / ``.used`` / ``.remaining`` for every capped resource."""
    out: dict[str, Any] = {}
    for key, limit in ledger.limits.items():
        name = f"budgetgraph.budget.{_resource(key)}"
        out[f"{name}.limit"] = float(limit)
        out[f"{name}.used"] = float(ledger.spent(key))
        out[f"{name}.remaining"] = float(ledger.remaining(key) or 0)
    return out


def event(name: str, attributes: Mapping[str, Any]) -> None:
    """An event on the current span (an overrun, say), when tracing is on."""
    if _tracer is None:
        return
    from opentelemetry import trace

    trace.get_current_span().add_event(name, _clean(attributes))
