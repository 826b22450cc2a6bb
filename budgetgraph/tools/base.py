"""Tool: a named, priced, budgeted function with a pydantic argument model, and the ``@tool`` decorator."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ..budget.limits import check_name
from ..errors import ConfigError, ToolCallError, ToolRejected
from ..models.messages import ToolSchema

__all__ = ["Failed", "NotFound", "Tool", "Used", "tool"]

Units = Callable[[BaseModel], int] | str | None


def _doc_parts(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """Description (the docstring before ``Args:``) and per-argument text from a Google-style docstring."""
    doc = inspect.getdoc(fn) or ""
    head, _, args_block = doc.partition("\nArgs:\n")
    params: dict[str, str] = {}
    current = None
    for line in args_block.splitlines():
        m = re.match(r"^\s{2,}(\w+)(?:\s*\(.*?\))?:\s*(.*)$", line)
        if m:
            current = m.group(1)
            params[current] = m.group(2).strip()
        elif current and line.strip() and not re.match(r"^\S", line):
            params[current] += " " + line.strip()
        elif re.match(r"^\S", line):
            break
    return head.strip(), params


def _model_from_signature(fn: Callable[..., Any], name: str, arg_docs: Mapping[str, str]) -> type[BaseModel]:
    hints = get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    for pname, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ConfigError(f"tool {name!r}: *args and **kwargs cannot be described to a model")
        annotation = hints.get(pname, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (annotation, Field(default, description=arg_docs.get(pname)))
    model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        f"{name}_args", __config__=ConfigDict(extra="forbid"), **fields
    )
    return model


_JSON_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "array": list,
    "object": dict,
}


def args_model_from_schema(name: str, schema: Mapping[str, Any]) -> type[BaseModel]:
    """A pydantic model of a JSON schema's arguments: the top-level types checked, unknown names refused (the
    schema itself is what the model is shown)."""
    required = set(schema.get("required", []))
    fields: dict[str, Any] = {}
    for prop, spec in (schema.get("properties") or {}).items():
        kind = spec.get("type") if isinstance(spec, Mapping) else None
        py: Any = _JSON_TYPES.get(kind, Any) if isinstance(kind, str) else Any
        fields[prop] = (
            (py, ...)
            if prop in required
            else (py | None, spec.get("default") if isinstance(spec, Mapping) else None)
        )
    model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        f"{name}_args", __config__=ConfigDict(extra="forbid"), **fields
    )
    return model


@dataclass(frozen=True, slots=True)
class Used:
    """A tool's result with what it really used: ``units``, when fewer than reserved (a batched call part of
    which was refused before any work was done: the rest is refunded), and ``cost``, the dollars a paid API
    billed for the call. The call reserved its price (the bound) and is charged the billed cost instead; a
    cost above the bound, negative or not a number is an overrun that stops the run."""

    result: Any
    units: int | None = None
    cost: Decimal | float | str | None = None


@dataclass(frozen=True, slots=True)
class NotFound:
    """A tool's result that found nothing (a search with no hits, a title not in the collection): the call is
    charged like any other, and its outcome is ``empty``, so planners know the look-up failed."""

    result: Any


@dataclass(frozen=True, slots=True)
class Failed:
    """A tool's result that reports a failure without raising (an API answered with an error body): the call
    is charged like any other, its outcome is ``error`` (planners read a failed look-up) and it is never
    cached. Raising :class:`~budgetgraph.errors.ToolCallError` does the same."""

    result: Any


class Tool:
    """A tool the agent can call.

    ``units`` says how many budget units a call uses: ``None`` means one, a string names a list argument
    whose length counts (BATS: one unit per query or URL), or a function of the parsed arguments.
    ``budget_key`` is the cap it draws from (its name by default; tools may share one). A batched call
    (``units`` naming a list argument) that does not fit runs its first items that do when ``trim_batches``;
    otherwise it is refused whole. ``idempotent=True`` lets a call that was in flight when a run crashed run
    again on resume (it is charged once). ``isolation="process"`` runs a sync function in a child process
    that is killed at the timeout (the function and its arguments must pickle); by default sync functions run
    on threads, which cannot be killed: a hung one is abandoned. ``cache=True`` (for pure tools: a search of
    a fixed corpus, a test run) answers a call identical to an earlier one of the same run with that result,
    neither run nor charged. ``reads=True`` marks a tool that reads a whole source (a document, a page) after
    a search found it: a research agent that answers from snippets alone is asked to read first. Tools run
    only through the metering layer.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        args_model: type[BaseModel] | None = None,
        price: Decimal | float | str = 0,
        units: Units = None,
        budget_key: str | None = None,
        timeout: float | None = 60.0,
        max_result_chars: int = 6000,
        trim_batches: bool = True,
        idempotent: bool = False,
        isolation: str = "thread",
        cache: bool = False,
        reads: bool = False,
    ) -> None:
        if isolation not in ("thread", "process"):
            raise ConfigError(f"tool isolation must be 'thread' or 'process', got {isolation!r}")
        if timeout is not None and not (isinstance(timeout, int | float) and 0 < timeout < float("inf")):
            raise ConfigError(f"tool timeout must be a positive number of seconds or None, got {timeout!r}")
        self.fn = fn
        self.cache = cache
        self.reads = reads
        self.idempotent = idempotent
        self.isolation = isolation
        self.trim_batches = trim_batches
        self.name = check_name(name or getattr(fn, "__name__", ""), "tool name")
        doc, arg_docs = _doc_parts(fn)
        self.description = description or doc or self.name
        self.args_model = args_model or _model_from_signature(fn, self.name, arg_docs)
        self.price = _price(price, name or fn.__name__)
        self.units = units
        self.budget_key = check_name(budget_key or self.name, f"tool {self.name!r}: budget_key")
        self.timeout = timeout
        self.max_result_chars = max_result_chars
        self.is_async = inspect.iscoroutinefunction(fn)
        if self.is_async and isolation == "process":
            raise ConfigError(f"tool {self.name!r}: isolation='process' is for sync functions")
        if isinstance(units, str) and units not in self.args_model.model_fields:
            raise ConfigError(f"tool {self.name!r}: units={units!r} is not one of its arguments")
        self.schema = ToolSchema(self.name, self.description, self.args_model.model_json_schema())

    @classmethod
    def from_schema(
        cls,
        name: str,
        description: str,
        parameters: Mapping[str, Any],
        fn: Callable[..., Any] | None = None,
        **options: Any,
    ) -> Tool:
        """A tool described by a JSON schema (an MCP server's, a benchmark's function list): the model is shown
        ``parameters`` as given. With no ``fn`` the tool is declared only: a call is scored or recorded by its
        planner, and running it is refused (not charged)."""
        schema = dict(parameters or {"type": "object", "properties": {}})

        async def declared(**_: Any) -> str:
            raise ToolRejected(f"{name} is declared only: its calls are recorded, never run")

        made = cls(
            fn or declared,
            name=name,
            description=description or name,
            args_model=args_model_from_schema(name, schema),
            **options,
        )
        made.schema = ToolSchema(made.name, made.description, schema)
        return made

    def __repr__(self) -> str:
        return f"Tool({self.name!r}, price={self.price}, budget_key={self.budget_key!r})"

    def validate(self, arguments: Mapping[str, Any]) -> BaseModel:
        """Parse the model's arguments; a bad call raises :class:`ToolCallError` saying what to fix."""
        if not isinstance(arguments, Mapping):
            raise ToolCallError(
                f"invalid arguments for {self.name}: expected a JSON object of named arguments, got "
                f"{type(arguments).__name__}"
            )
        try:
            return self.args_model.model_validate(dict(arguments))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}" for err in exc.errors()
            )
            schema = json.dumps(self.schema.parameters.get("properties", {}))
            raise ToolCallError(
                f"invalid arguments for {self.name}: {problems}. Expected: {schema}"
            ) from None

    def units_for(self, args: BaseModel) -> int:
        if self.units is None:
            return 1
        if isinstance(self.units, str):
            return max(1, len(getattr(args, self.units) or ()))
        return max(1, int(self.units(args)))

    def kwargs(self, args: BaseModel) -> dict[str, Any]:
        return {k: getattr(args, k) for k in type(args).model_fields}

    def format_result(self, result: Any) -> str:
        """Text for the model (JSON for non-strings), truncated to ``max_result_chars``."""
        text = result if isinstance(result, str) else json.dumps(result, default=str, ensure_ascii=False)
        if len(text) > self.max_result_chars:
            text = (
                text[: self.max_result_chars]
                + f"\n[... truncated {len(text) - self.max_result_chars} characters]"
            )
        return text


def _price(value: Any, name: str) -> Decimal:
    from ..budget.prices import price_value
    from ..errors import PriceError

    try:
        return price_value(value, f"tool {name!r} price")
    except PriceError as exc:
        raise ConfigError(str(exc)) from None


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    price: Decimal | float | str = 0,
    units: Units = None,
    budget_key: str | None = None,
    timeout: float | None = 60.0,
    max_result_chars: int = 6000,
    idempotent: bool = False,
    isolation: str = "thread",
    cache: bool = False,
    reads: bool = False,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None, /, **options: Any
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a plain function (sync or async) into a :class:`Tool`; its signature becomes the argument schema."""
    if fn is not None:
        return Tool(fn, **options)
    return lambda f: Tool(f, **options)
