"""Metered model calls: the one place that decides what a model call reserves, calls the model, and commits.

A call reserves one LLM call, its input tokens (counted before the call: exact where the backend has the
tokenizer, a proven upper bound otherwise) and its output bound (``max_tokens`` lowered to what the budget
allows), priced at the model's rates. It runs under the run's deadline; the truth is committed after it. A
reply with no usage is counted here. A backend that reports more than was reserved is an :class:`Overrun`:
the truth is committed and the caller must stop the run. Every attempt of a retried request is reserved and
charged as a call of its own (what the server saw, not what we wished it saw).
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from .. import tracing
from ..budget.ledger import Ledger, Reservation
from ..budget.limits import Amount
from ..budget.prices import CacheBound, PriceTable, Pricing, max_output_within
from ..errors import BadUsage, BudgetExceeded, BudgetgraphError, DeadlineExceeded, ModelError, Overrun
from ..models.base import ChatModel, failure_of, retry_policy, sampling, text_sink
from ..models.messages import Message, ModelResponse, ModelSettings, RequestUsage, ToolCall, ToolSchema

__all__ = ["MIN_OUTPUT", "TURN_ROLES", "CallPlan", "ModelMeter", "plan_call", "unique_ids"]


MIN_OUTPUT = 16
TURN_ROLES = frozenset({"act"})
"""Roles whose calls are turns (a `turns` cap counts them): the acting calls of the loops."""
"""The fewest output tokens a model call is worth making."""

_TOKEN_KEYS = ("input_tokens", "output_tokens", "total_tokens", "usd")
_CHECKED = ("input_tokens", "output_tokens", "total_tokens", "usd")
_MARGIN = 0.05  # seconds kept between a call's own timeout and the run's deadline, for the bookkeeping
_TOKEN_BYTES = 8
"""Bytes of UTF-8 one token covers at most, for ordinary text in any tokenizer we meter: a request's or
a reply's byte length over this is a floor no honest usage report goes under."""


@dataclass(frozen=True, slots=True)
class CallPlan:
    """What one model call reserves, and the output bound it is sent with."""

    amounts: dict[str, Amount]
    max_tokens: int
    input_tokens: int


def plan_call(
    ledger: Ledger,
    price: Pricing | None,
    n_in: int,
    max_out: int,
    *,
    use_hold: bool = False,
    min_output: int = MIN_OUTPUT,
) -> CallPlan | BudgetExceeded:
    """The reservation for one call, with ``max_out`` lowered to what every capped resource allows."""
    caps = [max_out]
    if (room := ledger.available("output_tokens", use_hold=use_hold)) is not None:
        caps.append(int(room))
    if (room := ledger.available("total_tokens", use_hold=use_hold)) is not None:
        caps.append(int(room) - n_in)
    if (room := ledger.available("input_tokens", use_hold=use_hold)) is not None and n_in > room:
        caps.append(-1)
    if (room := ledger.available("usd", use_hold=use_hold)) is not None and price is not None:
        caps.append(max_output_within(price, n_in, Decimal(room), max_out))
    allowed = min(caps)
    if allowed < min(min_output, max_out):
        key = next(
            (k for k in ("output_tokens", "total_tokens", "input_tokens", "usd") if ledger.caps(k)), ""
        )
        return BudgetExceeded(
            key or "tokens",
            f"{n_in} input + {min(min_output, max_out)} output tokens",
            ledger.available(key, use_hold=use_hold) if key else 0,
            ledger.limits.get(key),
        )
    amounts: dict[str, Amount] = {"llm_calls": 1}
    if any(ledger.caps(k) for k in _TOKEN_KEYS):
        amounts.update(input_tokens=n_in, output_tokens=allowed, total_tokens=n_in + allowed)
        if price is not None:
            amounts["usd"] = price.cost(n_in, allowed)
    return CallPlan(amounts, allowed, n_in)


def _floor(messages: Sequence[Message]) -> int:
    """The fewest tokens ``messages`` can be (see :data:`_TOKEN_BYTES`): what we can count ourselves."""
    size = 0
    for m in messages:
        size += len(m.content.encode())
        for c in m.tool_calls:
            size += len(c.name.encode()) + len(json.dumps(dict(c.arguments), ensure_ascii=False).encode())
    return -(-size // _TOKEN_BYTES)


def _fault(usage: RequestUsage) -> str | None:
    """What makes a usage report impossible (checked again here for backends that build it by hand)."""
    if usage.fault:
        return usage.fault
    for name in ("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens"):
        value = getattr(usage, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"{name}={value!r}"
    if usage.cached_input_tokens + usage.cache_write_tokens > usage.input_tokens > 0:
        return f"cached tokens ({usage.cached_input_tokens + usage.cache_write_tokens}) above input tokens ({usage.input_tokens})"
    return None


def unique_ids(response: ModelResponse) -> ModelResponse:
    """Tool-call ids unique within a reply (a later duplicate, or an empty id, gets a fresh one), so that each
    call is admitted, approved and answered once."""
    calls = response.message.tool_calls
    seen: set[str] = set()
    fixed: list[ToolCall] = []
    for i, call in enumerate(calls):
        cid = call.id
        if not cid or cid in seen:
            n = i
            while (cid := f"{call.id or 'call'}_{n}") in seen or any(c.id == cid for c in calls):
                n += 1
            call = ToolCall(cid, call.name, call.arguments)
        seen.add(cid)
        fixed.append(call)
    if all(a is b for a, b in zip(fixed, calls, strict=True)):
        return response
    message = response.message
    return replace(response, message=Message.assistant(message.content, tuple(fixed)))


def _actual(usage: RequestUsage, price: Pricing | None, n_in: int, n_out: int) -> dict[str, Amount]:
    actual: dict[str, Amount] = {
        "llm_calls": 1,
        "input_tokens": n_in,
        "output_tokens": n_out,
        "total_tokens": n_in + n_out,
        "cached_input_tokens": usage.cached_input_tokens,
    }
    if price is not None:
        actual["usd"] = price.cost(n_in, n_out, usage.cached_input_tokens, usage.cache_write_tokens)
    return actual


def _reserved_text(amounts: Mapping[str, Amount]) -> str:
    return ", ".join(f"{k} {v}" for k, v in amounts.items() if k != "llm_calls") or "one call"


class ModelMeter:
    """Calls to one model, charged to one ledger, priced from one price table."""

    def __init__(self, model: ChatModel, ledger: Ledger, prices: PriceTable | None = None) -> None:
        self.model = model
        self.ledger = ledger
        self.prices = prices or PriceTable()

    # -- what a call would take ------------------------------------------------------------------
    def price(self) -> Pricing | None:
        """The model's price; with a dollar cap anywhere up the ledger chain, an unknown price is an error."""
        provider = getattr(self.model, "provider", None)
        if self.ledger.caps("usd"):
            return self.prices.require_model_price(self.model.name, self.model.price, provider)
        return self.prices.model_price(self.model.name, self.model.price, provider)

    def bound(self, price: Pricing | None) -> Pricing | None:
        """What a call is reserved at: ``price``, or its worst case over cache reads and writes for a backend
        that may write its prompt cache (``writes_cache``), so what it reports never exceeds the reservation."""
        return (
            CacheBound(price) if price is not None and getattr(self.model, "writes_cache", False) else price
        )

    @property
    def window(self) -> int | None:
        """The model's context window in tokens, when the backend states one (the embedded model does)."""
        window = getattr(self.model, "context_window", None)
        return int(window) if window else None

    def needs_count(self) -> bool:
        return self.window is not None or any(self.ledger.caps(k) for k in _TOKEN_KEYS)

    def count(self, messages: Sequence[Message], tools: Sequence[ToolSchema]) -> int:
        """Input tokens of a request (0 when nothing needs them: no token or dollar cap, no window)."""
        return self.model.count_tokens(messages, tools) if self.needs_count() else 0

    def out_room(self, n_in: int, max_out: int) -> int:
        """``max_out`` lowered so that prompt plus reply fit the context window."""
        window = self.window
        return max_out if window is None else min(max_out, window - n_in)

    def plan(self, n_in: int, max_out: int, *, use_hold: bool = False) -> CallPlan | BudgetExceeded:
        price = self.bound(self.price())
        return plan_call(self.ledger, price, n_in, self.out_room(n_in, max_out), use_hold=use_hold)

    def set_hold(self, n_in: int, output: int, *, calls: int = 1, input_reserve: int = 256) -> None:
        """Hold back ``calls`` answer calls of ``n_in + input_reserve`` input and ``output`` output tokens in
        all (only reservations with ``use_hold=True`` may use them)."""
        if not self.ledger.limits and self.ledger.account is None:
            return
        hold_in = calls * (n_in + input_reserve)
        hold: dict[str, Amount] = {
            "llm_calls": calls,
            "input_tokens": hold_in,
            "output_tokens": output,
            "total_tokens": hold_in + output,
        }
        price = self.bound(self.price())
        if price is not None:
            hold["usd"] = price.cost(hold_in, output)
        self.ledger.set_hold(hold)

    # -- calling ---------------------------------------------------------------------------------
    async def ask(
        self,
        messages: Sequence[Message],
        *,
        role: str,
        max_tokens: int,
        settings: ModelSettings | None = None,
        tool: ToolSchema | None = None,
        use_hold: bool | None = None,
    ) -> ModelResponse:
        """The one one-shot ask outside an agent loop (a plan, a bid, a verdict, a synthesis, a repair):
        ``tool`` forces that tool's call and no tool forbids tool calls; only the ``answer`` role spends the
        answer hold unless ``use_hold`` says otherwise. Raises as :meth:`call` does."""
        chosen = ModelSettings(**(settings if settings is not None else ModelSettings(temperature=0.0)))
        chosen["tool_choice"] = tool.name if tool else "none"
        return await self.call(
            messages,
            [tool] if tool else [],
            chosen,
            role=role,
            max_tokens=max_tokens,
            use_hold=role == "answer" if use_hold is None else use_hold,
        )

    async def call(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSchema],
        settings: ModelSettings,
        *,
        role: str,
        max_tokens: int,
        use_hold: bool = False,
        node: str = "",
        on_text: Callable[[str], None] | None = None,
        n_in: int | None = None,
    ) -> ModelResponse:
        """One metered request (retried attempts are calls of their own).

        Raises :class:`BudgetExceeded` when it does not fit (nothing spent), :class:`DeadlineExceeded` when
        the seconds cap cut it (charged), :class:`Overrun` when the backend reported more than was reserved
        (the truth charged: stop the run), :class:`ModelError` when the backend failed for good.
        """
        price = self.price()
        counted = self.count(messages, tools) if n_in is None else n_in
        attempts, backoff = retry_policy(self.model)

        def retryable(exc: BaseException) -> bool:
            return not isinstance(exc, BudgetgraphError) and failure_of(self.model, exc).retryable

        if (override := sampling.get()) is not None:
            settings = ModelSettings(**{**settings, **override})
        args = (messages, tools, settings, price, counted, role, max_tokens, use_hold, node, on_text)
        try:
            if attempts == 1:  # no retry policy to run (embedded and scripted models)
                return await self._attempt(*args)
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(retryable),
                stop=stop_after_attempt(attempts),
                wait=wait_exponential_jitter(multiplier=backoff, max=8.0),
                reraise=True,
            ):
                with attempt:
                    return await self._attempt(*args)
        except (BudgetgraphError, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise ModelError(
                f"model {self.model.name!r}: request failed: {type(exc).__name__}: {exc}"
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _deadline(self) -> float | None:
        """Seconds this call may take (the run's seconds left, less a margin); None without a seconds cap."""
        left = self.ledger.available("seconds")
        return None if left is None else float(left) - _MARGIN

    async def _attempt(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSchema],
        settings: ModelSettings,
        price: Pricing | None,
        n_in: int,
        role: str,
        max_tokens: int,
        use_hold: bool,
        node: str,
        on_text: Callable[[str], None] | None,
    ) -> ModelResponse:
        room = self.out_room(n_in, max_tokens)
        if room < min(MIN_OUTPUT, max_tokens):
            raise BudgetExceeded("context_window", f"{n_in} + {MIN_OUTPUT} tokens", room, self.window)
        planned = plan_call(self.ledger, self.bound(price), n_in, room, use_hold=use_hold)
        if isinstance(planned, BudgetExceeded):
            raise planned
        left = self._deadline()
        if left is not None and left <= 0:
            raise BudgetExceeded("seconds", "time for a model call", 0, self.ledger.limits.get("seconds"))
        amounts = dict(planned.amounts)
        if role in TURN_ROLES and self.ledger.caps("turns"):
            amounts["turns"] = 1
        held = self.ledger.try_reserve(amounts, role=role, use_hold=use_hold)
        if isinstance(held, BudgetExceeded):
            raise held

        bill = functools.partial(self._billable, held, planned.max_tokens, price, n_in, messages, tools)

        sent: dict[str, Any] = dict(settings)
        sent["max_tokens"] = planned.max_tokens
        cut_by_cap = left is not None and left < float(sent.get("timeout", math.inf))
        if left is not None:
            sent["timeout"] = min(float(sent.get("timeout", math.inf)), left)
        if on_text is not None:
            sent["stream"] = True
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": self.model.name,
            "budgetgraph.node": node or role,
            "gen_ai.request.max_tokens": planned.max_tokens,
            "gen_ai.request.temperature": sent.get("temperature"),
        }
        with tracing.span(f"chat {self.model.name}", attrs) as span:
            token = text_sink.set(on_text) if on_text is not None else None
            try:
                request = self.model.request(messages, tools, ModelSettings(**sent))  # type: ignore[typeddict-item]
                wait = None if left is None else left + _MARGIN
                response = await asyncio.wait_for(request, wait) if wait is not None else await request
            except asyncio.TimeoutError:
                self._charge_failed(held, may_bill=True, reached=True, bill=bill)
                raise DeadlineExceeded("a model call", self.ledger.limits.get("seconds")) from None
            except BaseException as exc:
                failure = failure_of(self.model, exc)
                if isinstance(exc, asyncio.CancelledError):
                    self._charge_failed(held, may_bill=True, reached=True, bill=bill)
                    raise
                self._charge_failed(held, may_bill=failure.may_bill, reached=failure.reached, bill=bill)
                if cut_by_cap and failure.may_bill:  # a timeout set by the seconds cap
                    raise DeadlineExceeded("a model call", self.ledger.limits.get("seconds")) from exc
                raise
            finally:
                if token is not None:
                    text_sink.reset(token)
            usage = response.usage
            tracing.set_attributes(
                span,
                {
                    "gen_ai.usage.input_tokens": usage.input_tokens,
                    "gen_ai.usage.output_tokens": usage.output_tokens,
                    "gen_ai.response.model": response.model_name,
                    "gen_ai.response.finish_reasons": response.finish_reason,
                },
            )
        before = self.ledger.spent("usd")
        response = self._settle(held, planned, response, price, n_in, messages, bill)
        tracing.record_tokens(self.model.name, usage.input_tokens, usage.output_tokens)
        tracing.record_cost(self.model.name, float(self.ledger.spent("usd") - before))
        if response.finish_reason == "timeout":
            raise DeadlineExceeded("a model call", self.ledger.limits.get("seconds"))
        return response

    def _settle(
        self,
        held: Reservation,
        planned: CallPlan,
        response: ModelResponse,
        price: Pricing | None,
        n_in: int,
        messages: Sequence[Message],
        bill: Callable[[], dict[str, Amount]],
    ) -> ModelResponse:
        """Commit what a finished call used. A usage report that cannot be true (negative, NaN, missing, or
        under what the request and the reply in hand must have been) is charged what the provider may bill,
        and stops the run (:class:`BadUsage`); one above the reservation stops it too (:class:`Overrun`)."""
        fault = _fault(response.usage) or self._under_report(response, n_in, messages)
        if fault is not None:
            self.ledger.commit(held, bill())  # what cannot be trusted is charged at its bound
            raise BadUsage(fault, _reserved_text(planned.amounts), self.model.name)
        response = unique_ids(response)
        actual = self._truth(response, price, n_in, planned.max_tokens, messages)
        if "turns" in held.amounts:
            actual["turns"] = 1
        self.ledger.commit(held, actual)
        self._check_overrun(planned.amounts, actual)
        return response

    def _under_report(self, response: ModelResponse, n_in: int, messages: Sequence[Message]) -> str | None:
        """A reported count under what the text in hand must have been (see :data:`_TOKEN_BYTES`): the
        request, and the reply we hold. In-process backends that count with their own tokenizer
        (``counts_own_usage``) are not second-guessed."""
        usage = response.usage
        if usage.estimated or getattr(self.model, "counts_own_usage", False):
            return None
        reply = _floor([Message.assistant(response.message.content, response.message.tool_calls)])
        if usage.output_tokens < reply:
            return f"completion_tokens={usage.output_tokens} for a reply of at least {reply} tokens"
        # the messages' text only: providers render tool schemas in formats of their own, often shorter
        request = _floor(messages) if not n_in else min(_floor(messages), n_in)
        if usage.input_tokens < request and (usage.input_tokens or usage.output_tokens):
            return f"prompt_tokens={usage.input_tokens} for a request of at least {request} tokens"
        return None

    def _truth(
        self,
        response: ModelResponse,
        price: Pricing | None,
        n_in: int,
        bound: int,
        messages: Sequence[Message],
    ) -> dict[str, Amount]:
        """What the call used: the backend's usage, or, when it reported none, our count of the input and of
        the reply (at most the output bound it was sent with: our count of a reply may be high)."""
        usage = response.usage
        if usage.estimated or (usage.input_tokens == 0 and usage.output_tokens == 0):
            reply = [Message.assistant(response.message.content, response.message.tool_calls)]
            counted = n_in or self.model.count_tokens(messages, [])
            return _actual(usage, price, counted, min(self.model.count_tokens(reply, []), bound))
        return _actual(usage, price, usage.input_tokens or n_in, usage.output_tokens)

    def _check_overrun(self, reserved: Mapping[str, Amount], actual: Mapping[str, Amount]) -> None:
        for key in _CHECKED:
            if key in reserved and self.ledger.caps(key) and actual.get(key, 0) > reserved[key]:
                raise Overrun(key, reserved[key], actual[key], self.model.name)

    def _billable(
        self,
        held: Reservation,
        max_tokens: int,
        price: Pricing | None,
        n_in: int,
        messages: Sequence[Message],
        tools: Sequence[ToolSchema],
    ) -> dict[str, Amount]:
        """What a provider may bill for a call cut short (a timeout, the run's deadline): its input, counted
        now if it was not before, and its output bound; never less than the call reserved."""
        counted = n_in or self.model.count_tokens(messages, tools)
        out = _actual(RequestUsage(), self.bound(price), counted, max_tokens)
        out.pop("cached_input_tokens", None)
        if "turns" in held.amounts:
            out["turns"] = 1
        return {k: max(v, held.amounts.get(k, 0)) for k, v in out.items()}

    def _charge_failed(
        self, held: Reservation, *, may_bill: bool, reached: bool, bill: Callable[[], dict[str, Amount]]
    ) -> None:
        """A failed attempt: what the provider may bill if it may have billed (its input and its output bound,
        as a timeout or a cut at the deadline), one call if the server saw it, else nothing."""
        if may_bill:
            self.ledger.commit(held, bill())
        elif reached:
            self.ledger.commit(held, {"llm_calls": 1})
        else:
            self.ledger.refund(held)
