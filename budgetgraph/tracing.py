"""Optional OpenTelemetry spans (``otel`` extra), off by default: one span per run, model call and tool call,
with GenAI semantic-convention attributes and the budget figures.

    from budgetgraph.tracing import enable_tracing
    enable_tracing()            # the global tracer provider, or pass your own
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ._extras import require

__all__ = ["disable_tracing", "enable_tracing", "event", "span", "tracing_enabled"]

_tracer: Any = None


def enable_tracing(tracer_provider: Any = None) -> None:
    """Start emitting spans through ``tracer_provider`` (default: OpenTelemetry's global provider)."""
    global _tracer
    require("opentelemetry.trace", "otel")
    from opentelemetry import trace

    provider = tracer_provider or trace.get_tracer_provider()
    _tracer = provider.get_tracer("budgetgraph")


def disable_tracing() -> None:
    global _tracer
    _tracer = None


def tracing_enabled() -> bool:
    return _tracer is not None


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if value is None:
            continue
        out[key] = value if isinstance(value, str | bool | int | float) else str(value)
    return out


@contextmanager
def span(name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Any]:
    """A span when tracing is on (yields it, so callers can add attributes after the call), else ``None``."""
    if _tracer is None:
        yield None
        return
    with _tracer.start_as_current_span(name, attributes=_clean(attributes or {})) as current:
        yield current


def set_attributes(current: Any, attributes: Mapping[str, Any]) -> None:
    if current is not None:
        current.set_attributes(_clean(attributes))


def budget_attributes(ledger: Any) -> dict[str, Any]:
    """``budgetgraph.budget.<key>.limit`` / ``.spent`` for every capped resource of a ledger."""
    out: dict[str, Any] = {}
    for key, limit in ledger.limits.items():
        out[f"budgetgraph.budget.{key}.limit"] = float(limit)
        out[f"budgetgraph.budget.{key}.spent"] = float(ledger.spent(key))
    return out


def event(name: str, attributes: Mapping[str, Any]) -> None:
    """An event on the current span (an overrun, say), when tracing is on."""
    if _tracer is None:
        return
    from opentelemetry import trace

    trace.get_current_span().add_event(name, _clean(attributes))
