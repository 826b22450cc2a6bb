"""Model token prices and tool prices, and the unified cost in dollars (tokens + tool calls)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..errors import ConfigError, PriceError

__all__ = ["BUILTIN_MODEL_PRICES", "FREE", "ModelPrice", "PriceTable"]

_MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Dollars per million tokens."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None

    @classmethod
    def of(cls, input: Any, output: Any, cached_input: Any = None, cache_write: Any = None) -> ModelPrice:
        def dec(v: Any) -> Decimal | None:
            return None if v is None else Decimal(str(v))

        return cls(Decimal(str(input)), Decimal(str(output)), dec(cached_input), dec(cache_write))

    def cost(
        self, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0, cache_write_tokens: int = 0
    ) -> Decimal:
        """Cost of one call; ``input_tokens`` includes the cached and cache-write ones."""
        cached = self.cached_input if self.cached_input is not None else self.input
        written = self.cache_write if self.cache_write is not None else self.input
        plain = max(input_tokens - cached_input_tokens - cache_write_tokens, 0)
        total = plain * self.input + cached_input_tokens * cached + cache_write_tokens * written
        return (total + output_tokens * self.output) / _MILLION


FREE = ModelPrice(Decimal(0), Decimal(0), Decimal(0), Decimal(0))

# List prices in $ per million tokens (input, output, cached input, cache write) as published by the
# providers in 2025-2026. Override or extend them with PriceTable.from_file.
BUILTIN_MODEL_PRICES: Mapping[str, ModelPrice] = {
    "gpt-5": ModelPrice.of("1.25", "10.00", "0.125"),
    "gpt-5-mini": ModelPrice.of("0.25", "2.00", "0.025"),
    "gpt-5-nano": ModelPrice.of("0.05", "0.40", "0.005"),
    "gpt-4.1": ModelPrice.of("2.00", "8.00", "0.50"),
    "gpt-4.1-mini": ModelPrice.of("0.40", "1.60", "0.10"),
    "gpt-4.1-nano": ModelPrice.of("0.10", "0.40", "0.025"),
    "gpt-4o": ModelPrice.of("2.50", "10.00", "1.25"),
    "gpt-4o-mini": ModelPrice.of("0.15", "0.60", "0.075"),
    "o3": ModelPrice.of("2.00", "8.00", "0.50"),
    "o4-mini": ModelPrice.of("1.10", "4.40", "0.275"),
    "claude-opus-4-1": ModelPrice.of("15", "75", "1.50", "18.75"),
    "claude-opus-4": ModelPrice.of("15", "75", "1.50", "18.75"),
    "claude-opus-4-5": ModelPrice.of("5", "25", "0.50", "6.25"),
    "claude-sonnet-4-5": ModelPrice.of("3", "15", "0.30", "3.75"),
    "claude-sonnet-4": ModelPrice.of("3", "15", "0.30", "3.75"),
    "claude-haiku-4-5": ModelPrice.of("1", "5", "0.10", "1.25"),
    "claude-3-5-haiku": ModelPrice.of("0.80", "4", "0.08", "1"),
}


def _lookup(table: Mapping[str, ModelPrice], model: str) -> ModelPrice | None:
    """Exact name, else the longest known prefix (so dated names like claude-sonnet-4-20250514 match)."""
    if model in table:
        return table[model]
    best = ""
    for name in table:
        if model.startswith(name) and len(name) > len(best):
            best = name
    return table[best] if best else None


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Prices for models (per million tokens) and tools (per unit), layered over the built-in table."""

    models: Mapping[str, ModelPrice] = field(default_factory=dict)
    tools: Mapping[str, Decimal] = field(default_factory=dict)
    include_builtin: bool = True

    def model_price(self, model: str, default: ModelPrice | None = None) -> ModelPrice | None:
        """The user's price, else the backend's own (``default``: local models are free), else built-in."""
        found = _lookup(self.models, model)
        if found is None and default is not None:
            return default
        if found is None and self.include_builtin:
            found = _lookup(BUILTIN_MODEL_PRICES, model)
        return found

    def require_model_price(self, model: str, default: ModelPrice | None = None) -> ModelPrice:
        """Like :meth:`model_price` but an unknown price is an error (used when a dollar cap is set)."""
        price = self.model_price(model, default)
        if price is None:
            raise PriceError(
                f"no price is known for model {model!r} and a dollar cap is set: give it one, e.g. "
                f"PriceTable(models={{{model!r}: ModelPrice.of(input=0.4, output=1.6)}}) or a prices file "
                "(--prices prices.yaml with 'models: {NAME: {input: 0.4, output: 1.6}}'), or drop the usd cap"
            )
        return price

    def tool_price(self, tool: str, default: Decimal) -> Decimal:
        return self.tools.get(tool, default)

    @classmethod
    def from_file(cls, path: str | Path) -> PriceTable:
        """Read ``{models: {name: {input, output, cached_input?, cache_write?}}, tools: {name: price}}``.

        YAML (``.yaml``/``.yml``) or JSON.
        """
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read price file {p}: {exc}") from exc
        try:
            if p.suffix.lower() in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except Exception as exc:
            raise ConfigError(f"price file {p} is not valid {p.suffix.lstrip('.') or 'JSON'}: {exc}") from exc
        return cls.from_dict(data or {}, source=str(p))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "prices") -> PriceTable:
        if not isinstance(data, Mapping) or set(data) - {"models", "tools", "include_builtin"}:
            raise ConfigError(f"{source}: expected a mapping with 'models' and/or 'tools' keys")
        models: dict[str, ModelPrice] = {}
        for name, spec in (data.get("models") or {}).items():
            if not isinstance(spec, Mapping) or "input" not in spec or "output" not in spec:
                raise ConfigError(
                    f"{source}: model {name!r} needs 'input' and 'output' prices per million tokens"
                )
            try:
                models[str(name)] = ModelPrice.of(
                    spec["input"], spec["output"], spec.get("cached_input"), spec.get("cache_write")
                )
            except InvalidOperation:
                raise ConfigError(
                    f"{source}: model {name!r} has a price that is not a number: {spec}"
                ) from None
        tools: dict[str, Decimal] = {}
        for name, price in (data.get("tools") or {}).items():
            try:
                tools[str(name)] = Decimal(str(price))
            except InvalidOperation:
                raise ConfigError(f"{source}: tool {name!r} price {price!r} is not a number") from None
        return cls(models=models, tools=tools, include_builtin=bool(data.get("include_builtin", True)))
