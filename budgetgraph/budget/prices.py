"""Model token prices and tool prices, and the unified cost in dollars (tokens + tool calls).

Built-in model prices come from ``genai-prices`` (current, tier- and cache-aware list prices, maintained with
pydantic-ai) for the provider a backend names; a model is priced by an exact name, a match the price data
declares (dated names), or an alias the user declares: never by a name prefix of our own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from .._files import loads, read_text
from ..errors import ConfigError, PriceError

__all__ = [
    "FREE",
    "CacheBound",
    "ModelPrice",
    "PriceTable",
    "Pricing",
    "builtin_price",
    "max_output_within",
    "price_value",
]

_MILLION = Decimal(1_000_000)


def price_value(value: Any, what: str) -> Decimal:
    """A finite, non-negative Decimal, or a PriceError saying what was wrong."""
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise PriceError(f"{what}: {value!r} is not a number") from None
    if not number.is_finite() or (isinstance(value, float) and not math.isfinite(value)):
        raise PriceError(f"{what}: {value!r} is not a finite number")
    if number < 0:
        raise PriceError(f"{what}: {value!r} is negative; prices cannot be below zero")
    return number


class Pricing(Protocol):
    """Anything that prices one model call (a flat :class:`ModelPrice` or a tiered built-in price)."""

    def cost(
        self, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0, cache_write_tokens: int = 0
    ) -> Decimal: ...


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Dollars per million tokens (finite and not negative)."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None

    def __post_init__(self) -> None:
        for name in ("input", "output", "cached_input", "cache_write"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, price_value(value, f"model price {name}"))

    @classmethod
    def of(cls, input: Any, output: Any, cached_input: Any = None, cache_write: Any = None) -> ModelPrice:
        return cls(input, output, cached_input, cache_write)

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


@dataclass(frozen=True, slots=True)
class CacheBound:
    """The most a call can cost when the provider may read or write its prompt cache: cost is linear in how
    the input splits into plain, cache-read and cache-write tokens, so the worst split puts all of it in one
    (cache writes cost more than plain input at Anthropic). What reservations use for such a backend."""

    price: Pricing

    def cost(
        self, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0, cache_write_tokens: int = 0
    ) -> Decimal:
        p, n = self.price, input_tokens
        return max(p.cost(n, output_tokens), p.cost(n, output_tokens, n), p.cost(n, output_tokens, 0, n))


@dataclass(frozen=True, slots=True)
class _BuiltinPrice:
    """A genai-prices model price (tiers by prompt size, cache reads and writes apart)."""

    model_id: str
    provider: str
    price: Any

    def cost(
        self, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0, cache_write_tokens: int = 0
    ) -> Decimal:
        from genai_prices import Usage

        usage = Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cached_input_tokens,
            cache_write_tokens=cache_write_tokens,
        )
        return Decimal(self.price.calc_price(usage)["total_price"])


@lru_cache(maxsize=256)
def builtin_price(model: str, provider: str) -> Pricing | None:
    """genai-prices' price of ``model`` at ``provider`` ("openai", "anthropic", ...), or None if it has none."""
    from genai_prices import Usage, calc_price

    try:
        found = calc_price(Usage(input_tokens=1, output_tokens=1), model_ref=model, provider_id=provider)
    except LookupError:
        return None
    return _BuiltinPrice(found.model.id, found.provider.id, found.model_price)


def max_output_within(price: Pricing, input_tokens: int, room: Decimal, upper: int) -> int:
    """The most output tokens (at most ``upper``) whose call with ``input_tokens`` costs no more than ``room``."""
    if price.cost(input_tokens, upper) <= room:
        return upper
    if price.cost(input_tokens, 0) > room:
        return -1
    low, high = 0, upper  # cost(low) fits, cost(high) does not
    while high - low > 1:
        mid = (low + high) // 2
        if price.cost(input_tokens, mid) <= room:
            low = mid
        else:
            high = mid
    return low


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Prices for models (per million tokens) and tools (per unit), over the built-in genai-prices data.

    ``aliases`` prices a model name as another (``{"my-gpt": "gpt-4.1-mini"}``): the only way a name that is
    not known exactly borrows a price.
    """

    models: Mapping[str, ModelPrice] = field(default_factory=dict)
    tools: Mapping[str, Decimal] = field(default_factory=dict)
    include_builtin: bool = True
    aliases: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "tools",
            {name: price_value(price, f"tool {name!r} price") for name, price in self.tools.items()},
        )

    def model_price(
        self, model: str, default: Pricing | None = None, provider: str | None = None
    ) -> Pricing | None:
        """The user's price (exact name or a declared alias), else the backend's own (``default``: local
        models are free), else the built-in price for ``provider`` (exact or a match the data declares)."""
        name = self.aliases.get(model, model)
        if name in self.models:
            return self.models[name]
        if default is not None:
            return default
        if self.include_builtin and provider:
            return builtin_price(name, provider)
        return None

    def require_model_price(
        self, model: str, default: Pricing | None = None, provider: str | None = None
    ) -> Pricing:
        """Like :meth:`model_price` but an unknown price is an error (used when a dollar cap is set)."""
        price = self.model_price(model, default, provider)
        if price is None:
            where = f" at provider {provider!r}" if provider else " (a self-hosted or unnamed provider)"
            raise PriceError(
                f"no price is known for model {model!r}{where} and a dollar cap is set: give it one, e.g. "
                f"PriceTable(models={{{model!r}: ModelPrice.of(input=0.4, output=1.6)}}), an alias "
                f"PriceTable(aliases={{{model!r}: 'gpt-4.1-mini'}}), or a prices file (--prices prices.yaml "
                "with 'models: {NAME: {input: 0.4, output: 1.6}}'), or drop the usd cap"
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
        text = read_text(p, "price file")
        try:
            if p.suffix.lower() in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text)
            else:
                data = loads(text)
        except Exception as exc:
            raise ConfigError(f"price file {p} is not valid {p.suffix.lstrip('.') or 'JSON'}: {exc}") from exc
        return cls.from_dict(data or {}, source=str(p))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "prices") -> PriceTable:
        if not isinstance(data, Mapping) or set(data) - {"models", "tools", "include_builtin", "aliases"}:
            raise ConfigError(f"{source}: expected a mapping with 'models', 'tools' and/or 'aliases' keys")
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
            except PriceError as exc:
                raise PriceError(f"{source}: model {name!r}: {exc}") from None
        tools: dict[str, Decimal] = {}
        for name, price in (data.get("tools") or {}).items():
            tools[str(name)] = price_value(price, f"{source}: tool {name!r} price")
        aliases = data.get("aliases") or {}
        if not isinstance(aliases, Mapping) or not all(isinstance(v, str) for v in aliases.values()):
            raise ConfigError(f"{source}: 'aliases' maps model names to the model names to price them as")
        return cls(
            models=models,
            tools=tools,
            include_builtin=bool(data.get("include_builtin", True)),
            aliases={str(k): v for k, v in aliases.items()},
        )
