"""The LangGraph agent loop: a model node and a tool node that both go through the ledger, and an answer
node that spends the final-answer reserve (architecture rules 1-3)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

from .. import tracing
from ..budget.block import REGIME_POLICY, RegimePolicy, render_budget_block
from ..budget.ledger import Ledger, Reservation
from ..budget.limits import Amount, tool_key
from ..budget.prices import ModelPrice, PriceTable
from ..errors import BudgetExceeded, ToolCallError, ToolRejected
from ..models.base import ChatModel, text_sink
from ..models.messages import Message, ModelResponse, ModelSettings, RequestUsage, ToolCall, ToolSchema
from ..tools.base import Tool
from .events import TextDelta, ToolCallFinished, ToolCallStarted
from .prompts import answer_now, extract_answer
from .state import AgentState, StopInfo

__all__ = ["LEDGER_KEY", "STREAM_KEY", "LoopConfig", "build_graph", "charged_call"]

NO_ANSWER = "the model replied with neither a tool call nor an answer"

LEDGER_KEY = "budgetgraph_ledger"
"""Key in ``config["configurable"]`` of the live ledger of a run (else it is rebuilt from the state)."""

_TOKEN_KEYS = ("input_tokens", "output_tokens", "total_tokens", "usd")
_MIN_OUTPUT = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopConfig:
    """Everything the nodes need that does not change during a run."""

    model: ChatModel
    tools: Mapping[str, Tool]
    system_prompt: str
    show_budget: bool
    prices: PriceTable = field(default_factory=PriceTable)
    settings: ModelSettings = field(default_factory=lambda: ModelSettings())
    max_tokens: int = 512
    answer_max_tokens: int = 256
    answer_input_reserve: int = 256
    max_turns: int = 30
    force_first_tool: bool = True
    regime_policy: RegimePolicy = field(default_factory=lambda: REGIME_POLICY)
    answer_nudge: str = field(default_factory=answer_now)
    """The final-answer request after the tools are done (``{reason}`` is filled in)."""

    def model_price(self, ledger: Ledger) -> ModelPrice | None:
        if "usd" in ledger.limits:
            return self.prices.require_model_price(self.model.name, self.model.price)
        return self.prices.model_price(self.model.name, self.model.price)

    def tool_price(self, tool: Tool) -> Decimal:
        return self.prices.tool_price(tool.name, tool.price)


def _ledger(state: AgentState, config: RunnableConfig) -> Ledger:
    live = (config.get("configurable") or {}).get(LEDGER_KEY)
    return live if isinstance(live, Ledger) else Ledger.from_snapshot(state.get("ledger") or {})


STREAM_KEY = "budgetgraph_stream"


def _streaming(config: RunnableConfig) -> bool:
    return bool((config.get("configurable") or {}).get(STREAM_KEY))


def _emit(config: RunnableConfig, event: Any) -> None:
    """Send a typed event to ``Agent.astream`` (LangGraph's custom stream); a no-op otherwise."""
    if _streaming(config):
        get_stream_writer()(event)


async def _request(
    cfg: LoopConfig,
    config: RunnableConfig,
    node: str,
    messages: Sequence[Message],
    tools: Any,
    settings: ModelSettings,
) -> Any:
    """One model request (a GenAI ``chat`` span when tracing); while streaming, text deltas become events."""
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": cfg.model.name,
        "budgetgraph.node": node,
        "gen_ai.request.max_tokens": settings.get("max_tokens"),
        "gen_ai.request.temperature": settings.get("temperature"),
    }
    with tracing.span(f"chat {cfg.model.name}", attrs) as current:
        if not _streaming(config):
            response = await cfg.model.request(messages, tools, settings)
        else:
            writer = get_stream_writer()
            token = text_sink.set(lambda text: writer(TextDelta(text, node)))
            try:
                response = await cfg.model.request(messages, tools, ModelSettings(**settings, stream=True))
            finally:
                text_sink.reset(token)
        tracing.set_attributes(
            current,
            {
                "gen_ai.usage.input_tokens": response.usage.input_tokens,
                "gen_ai.usage.output_tokens": response.usage.output_tokens,
                "gen_ai.response.model": response.model_name,
                "gen_ai.response.finish_reasons": response.finish_reason,
            },
        )
    calls = response.message.tool_calls
    if settings.get("parallel_tool_calls") is False and len(calls) > 1:
        # the backend ignored the setting (text-parsed calls): the first call is the reply, as the API would give
        return replace(response, message=Message.assistant(response.message.content, calls[:1]))
    return response


_MIN_REPLY = 16  # the fewest output tokens a model turn is worth making


def _stop(kind: str, resource: str = "", message: str = "") -> StopInfo:
    return {"kind": kind, "resource": resource, "message": message}


def _refusal_text(exc: BudgetExceeded) -> str:
    label = exc.resource.removeprefix("tool:")
    return f"Budget exhausted for {label}: needed {exc.requested}, {exc.remaining} left of {exc.limit}."


class _Loop:
    def __init__(self, cfg: LoopConfig) -> None:
        self.cfg = cfg
        self.system = Message.system(cfg.system_prompt)

    # -- helpers -------------------------------------------------------------------------------
    def _available_tools(self, ledger: Ledger) -> list[Tool]:
        return [t for t in self.cfg.tools.values() if ledger.tool_remaining(t.budget_key) != 0]

    def _exhausted_tool(self, ledger: Ledger) -> str:
        for t in self.cfg.tools.values():
            if ledger.tool_remaining(t.budget_key) == 0:
                return t.budget_key
        return "tool_calls"

    @staticmethod
    def _call_amounts(
        ledger: Ledger, price: ModelPrice | None, n_in: int, max_out: int, use_hold: bool
    ) -> tuple[dict[str, Amount], int] | BudgetExceeded:
        """The reservation for one model call, with ``max_tokens`` lowered to what the budget allows."""
        limits = ledger.limits
        hold = {} if use_hold else ledger.hold

        def room(key: str) -> Any:
            rem = ledger.remaining(key)
            return None if rem is None else rem - hold.get(key, 0)

        caps = [max_out]
        if (r := room("output_tokens")) is not None:
            caps.append(int(r))
        if (r := room("total_tokens")) is not None:
            caps.append(int(r) - n_in)
        if (r := room("usd")) is not None and price is not None and price.output > 0:
            spare = Decimal(r) - price.cost(n_in, 0)
            caps.append(int(spare * 1_000_000 / price.output))
        allowed = min(caps)
        if allowed < min(_MIN_OUTPUT, max_out):
            key = next(
                (k for k in ("output_tokens", "total_tokens", "usd", "input_tokens") if k in limits), "tokens"
            )
            return BudgetExceeded(
                key, f"{n_in} input + {_MIN_OUTPUT} output tokens", room(key), limits.get(key)
            )
        amounts: dict[str, Amount] = {"llm_calls": 1}
        if any(k in limits for k in _TOKEN_KEYS):
            amounts.update(input_tokens=n_in, output_tokens=allowed, total_tokens=n_in + allowed)
            if price is not None:
                amounts["usd"] = price.cost(n_in, allowed)
        return amounts, allowed

    @staticmethod
    def _actual(usage: RequestUsage, price: ModelPrice | None, n_in: int) -> dict[str, Amount]:
        n_in = usage.input_tokens or n_in
        actual: dict[str, Amount] = {
            "llm_calls": 1,
            "input_tokens": n_in,
            "output_tokens": usage.output_tokens,
            "total_tokens": n_in + usage.output_tokens,
            "cached_input_tokens": usage.cached_input_tokens,
        }
        if price is not None:
            actual["usd"] = price.cost(
                n_in, usage.output_tokens, usage.cached_input_tokens, usage.cache_write_tokens
            )
        return actual

    @staticmethod
    def _needs_count(ledger: Ledger) -> bool:
        return any(k in ledger.limits for k in _TOKEN_KEYS)

    def _window(self) -> int | None:
        """The model's context window in tokens, when the backend states one (the embedded model does)."""
        window = getattr(self.cfg.model, "context_window", None)
        return int(window) if window else None

    def _count(self, ledger: Ledger, messages: list[Message], schemas: list[ToolSchema]) -> int:
        if self._needs_count(ledger) or self._window() is not None:
            return self.cfg.model.count_tokens(messages, schemas)
        return 0

    def _out_room(self, n_in: int, max_out: int) -> int:
        """``max_out`` lowered so prompt plus reply fit the context window (below _MIN_REPLY: it does not fit)."""
        window = self._window()
        return max_out if window is None else min(max_out, window - n_in)

    def _set_answer_hold(self, ledger: Ledger, price: ModelPrice | None, n_in: int) -> None:
        if not ledger.limits:
            return
        hold_in = n_in + self.cfg.answer_input_reserve
        out = self.cfg.answer_max_tokens
        hold: dict[str, Amount] = {"llm_calls": 1, "input_tokens": hold_in, "output_tokens": out}
        hold["total_tokens"] = hold_in + out
        if price is not None:
            hold["usd"] = price.cost(hold_in, out)
        ledger.set_hold(hold)

    async def _act(
        self,
        config: RunnableConfig,
        ledger: Ledger,
        node: str,
        messages: list[Message],
        schemas: list[ToolSchema],
        *,
        force: bool,
    ) -> ModelResponse | StopInfo:
        """One acting turn: set the answer hold, reserve, call, commit. A StopInfo when it cannot run or fails
        (the reservation is refunded); ``force`` makes it a tool call when tools are offered."""
        price = self.cfg.model_price(ledger)
        n_in = self._count(ledger, messages, schemas)
        room = self._out_room(n_in, self.cfg.max_tokens)
        if room < _MIN_REPLY:
            window = self._window()
            return _stop(
                "context_full", "", f"The prompt ({n_in} tokens) fills the model's context window ({window})."
            )
        self._set_answer_hold(ledger, price, n_in)
        planned = self._call_amounts(ledger, price, n_in, room, use_hold=False)
        if isinstance(planned, BudgetExceeded):
            return _stop("budget_exhausted", planned.resource, str(planned))
        amounts, max_out = planned
        reservation = ledger.try_reserve(amounts, role="act")
        if isinstance(reservation, BudgetExceeded):
            return _stop("budget_exhausted", reservation.resource, str(reservation))
        settings = ModelSettings(**self.cfg.settings)
        settings["max_tokens"] = max_out
        if force and schemas and self.cfg.force_first_tool:
            settings["tool_choice"] = "required"
        try:
            response: ModelResponse = await _request(self.cfg, config, node, messages, schemas, settings)
        except Exception as exc:
            ledger.refund(reservation)
            return _stop("error", "model", f"{type(exc).__name__}: {exc}")
        ledger.commit(reservation, self._actual(response.usage, price, n_in))
        return response

    # -- nodes ---------------------------------------------------------------------------------
    async def model_node(self, state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        ledger = _ledger(state, config)
        turns = state.get("turns", 0)
        if turns >= self.cfg.max_turns:
            return self._to_answer(ledger, _stop("max_turns", "", f"reached max_turns={self.cfg.max_turns}"))
        tools = self._available_tools(ledger)
        if self.cfg.tools and not tools:
            key = self._exhausted_tool(ledger)
            return self._to_answer(
                ledger,
                _stop("budget_exhausted", key, f"The {key.removeprefix('tool:')} budget is exhausted."),
            )
        messages = [self.system, *state.get("messages", [])]
        schemas = [t.schema for t in tools]
        response = await self._act(config, ledger, "model", messages, schemas, force=turns == 0)
        if not isinstance(response, ModelResponse):
            if response.get("kind") == "error":
                return {"phase": "done", "stop": response, "ledger": ledger.snapshot(), "answer": None}
            return self._to_answer(ledger, response)
        message = response.message
        update: dict[str, Any] = {"messages": [message], "turns": turns + 1, "ledger": ledger.snapshot()}
        if message.tool_calls:
            return {**update, "phase": "tools"}
        answer = extract_answer(message.content)
        if not answer:
            update["phase"] = "answer"
            update["stop"] = _stop("answered", "", NO_ANSWER)
            return update
        return {**update, "phase": "done", "answer": answer, "stop": _stop("answered")}

    def _to_answer(self, ledger: Ledger, stop: StopInfo) -> dict[str, Any]:
        return {"phase": "answer", "stop": stop, "ledger": ledger.snapshot()}

    async def tools_node(self, state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        ledger = _ledger(state, config)
        calls = state["messages"][-1].tool_calls
        results: list[str] = [""] * len(calls)
        pending: list[tuple[int, Tool, Any, Reservation, str]] = []
        refused: list[str] = []
        for i, call in enumerate(calls):
            prepared = self._prepare(ledger, call)
            if isinstance(prepared, str):
                results[i] = prepared
            elif isinstance(prepared, BudgetExceeded):
                results[i] = _refusal_text(prepared) + " This call was not run."
                refused.append(prepared.resource)
            else:
                pending.append((i, *prepared))
        outputs = await asyncio.gather(
            *(self._run(ledger, t, a, r, config, calls[i]) for i, t, a, r, _ in pending)
        )
        for (i, *_, note), text in zip(pending, outputs, strict=True):
            results[i] = note + text
        block = (
            "\n\n" + render_budget_block(ledger, self.cfg.regime_policy)
            if self.cfg.show_budget and ledger.limits
            else ""
        )
        messages = [Message.tool(text + block, c.id, c.name) for c, text in zip(calls, results, strict=True)]
        update: dict[str, Any] = {"messages": messages, "ledger": ledger.snapshot(), "phase": "act"}
        if self.cfg.tools and not self._available_tools(ledger):
            key = self._exhausted_tool(ledger)
            update.update(
                phase="answer",
                stop=_stop("budget_exhausted", key, f"The {key.removeprefix('tool:')} budget is exhausted."),
            )
        elif refused and not pending:
            update.update(
                phase="answer", stop=_stop("budget_exhausted", refused[0], "every tool call was refused")
            )
        return update

    def _prepare(
        self, ledger: Ledger, call: ToolCall
    ) -> tuple[Tool, Any, Reservation, str] | BudgetExceeded | str:
        if call.error:
            return f"Error: {call.error}. The call was not run; fix it and try again."
        tool = self.cfg.tools.get(call.name)
        if tool is None:
            return f"Error: unknown tool {call.name!r}; available tools: {', '.join(self.cfg.tools)}."
        try:
            args = tool.validate(call.arguments)
        except ToolCallError as exc:
            return f"Error: {exc}. The call was not run."
        units = tool.units_for(args)
        reservation = ledger.try_reserve(self._tool_amounts(tool, units))
        if not isinstance(reservation, BudgetExceeded):
            return tool, args, reservation, ""
        if not (isinstance(tool.units, str) and tool.trim_batches and units > 1):
            return reservation
        items = list(getattr(args, tool.units) or [])
        for n in range(units - 1, 0, -1):  # a batch that does not fit runs its first items that do
            held = ledger.try_reserve(self._tool_amounts(tool, n))
            if not isinstance(held, BudgetExceeded):
                trimmed = args.model_copy(update={tool.units: items[:n]})
                note = (
                    f"[Budget: only the first {n} of {units} {tool.units} were run; {units - n} skipped.]\n"
                )
                return tool, trimmed, held, note
        return reservation

    def _tool_amounts(self, tool: Tool, units: int) -> dict[str, Amount]:
        amounts: dict[str, Amount] = {tool_key(tool.budget_key): units, "tool_calls": units}
        price = self.cfg.tool_price(tool)
        if price:
            amounts["usd"] = price * units
        return amounts

    async def _run(
        self,
        ledger: Ledger,
        tool: Tool,
        args: Any,
        reservation: Reservation,
        config: RunnableConfig,
        call: ToolCall,
    ) -> str:
        units = int(reservation.amounts.get("tool_calls", 1))
        cost = float(reservation.amounts.get("usd", 0))
        _emit(config, ToolCallStarted(tool.name, call.id, dict(call.arguments), units, cost))
        started = time.monotonic()
        remaining = ledger.remaining("seconds")
        charged = True
        attrs = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool.name,
            "gen_ai.tool.call.id": call.id,
            "budgetgraph.tool.units": units,
            "budgetgraph.tool.cost_usd": cost,
        }
        with tracing.span(f"execute_tool {tool.name}", attrs) as current:
            try:
                text = await tool.run(args, None if remaining is None else max(float(remaining), 0.001))
            except ToolRejected as exc:
                ledger.refund(reservation)
                charged = False
                text = f"Error: {exc} (not charged)"
            except ToolCallError as exc:
                text = f"Error: {exc}"
            except Exception as exc:  # a tool's own bug must not end the run
                text = f"Error: tool {tool.name} raised {type(exc).__name__}: {exc}"
            if charged:
                ledger.commit(reservation)
            tracing.set_attributes(
                current,
                {"budgetgraph.tool.charged": charged, "budgetgraph.tool.error": text.startswith("Error:")},
            )
        seconds = time.monotonic() - started
        _emit(
            config,
            ToolCallFinished(
                tool.name, call.id, units if charged else 0, cost if charged else 0.0, charged, seconds
            ),
        )
        return text

    async def answer_node(self, state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        ledger = _ledger(state, config)
        stop = state.get("stop") or _stop("answered")
        reason = stop.get("message") or "The budget is exhausted."
        history = list(state.get("messages", []))
        price = self.cfg.model_price(ledger)
        nudge = Message.user(self.cfg.answer_nudge.format(reason=reason.rstrip(".") + "."))
        planned: tuple[dict[str, Amount], int] | BudgetExceeded = BudgetExceeded("llm_calls", 1, 0, 0)
        messages: list[Message] = []
        n_in = 0
        for _ in range(len(history) + 1):  # blank old tool results until the call fits budget and window
            messages = [self.system, *history, nudge]
            n_in = self._count(ledger, messages, [])
            room = self._out_room(n_in, self.cfg.answer_max_tokens)
            planned = (
                BudgetExceeded("context_window", _MIN_REPLY, room, 0)
                if room < _MIN_REPLY
                else self._call_amounts(ledger, price, n_in, room, use_hold=True)
            )
            if not isinstance(planned, BudgetExceeded) or not _shrink(history):
                break
        reservation = (
            None
            if isinstance(planned, BudgetExceeded)
            else ledger.try_reserve(planned[0], role="answer", use_hold=True)
        )
        fallback = {"phase": "done", "stop": stop, "ledger": ledger.snapshot(), "answer": _last_text(history)}
        if (
            reservation is None
            or isinstance(reservation, BudgetExceeded)
            or isinstance(planned, BudgetExceeded)
        ):
            return fallback
        settings = ModelSettings(**self.cfg.settings)
        settings["max_tokens"] = planned[1]
        settings["tool_choice"] = "none"
        try:
            response = await _request(self.cfg, config, "answer", messages, [], settings)
        except Exception as exc:
            ledger.refund(reservation)
            return {
                **fallback,
                "stop": _stop("error", "model", f"{type(exc).__name__}: {exc}"),
                "ledger": ledger.snapshot(),
            }
        ledger.commit(reservation, self._actual(response.usage, price, n_in))
        text = response.message.content
        return {
            "messages": [nudge, Message.assistant(text)],
            "phase": "done",
            "answer": extract_answer(text) if text else _last_text(history),
            "stop": stop,
            "ledger": ledger.snapshot(),
        }


def _shrink(history: list[Message]) -> bool:
    """Blank the oldest tool result still holding text, so the answer call fits; False when none is left."""
    for i, m in enumerate(history):
        if m.role == "tool" and not m.content.startswith("[removed"):
            history[i] = Message.tool("[removed to fit the budget]", m.tool_call_id or "", m.name)
            return True
    return False


def _last_text(history: Sequence[Message]) -> str | None:
    for m in reversed(history):
        if m.role == "assistant" and m.content.strip():
            return extract_answer(m.content)
    return None


async def charged_call(
    cfg: LoopConfig,
    ledger: Ledger,
    messages: list[Message],
    *,
    role: str,
    max_out: int,
    tool: ToolSchema | None = None,
    use_hold: bool = False,
) -> Message | BudgetExceeded:
    """One model call outside the act loop (plan, verify, select, split, synthesise), charged under ``role``.

    ``max_tokens`` is lowered to what the budget allows; ``tool`` forces a call of that one tool (the
    structured-output path); a refusal is returned, not raised, and a failed call is refunded.
    """
    price = cfg.model_price(ledger)
    tools = [tool] if tool else []
    n_in = cfg.model.count_tokens(messages, tools) if _Loop._needs_count(ledger) else 0
    planned = _Loop._call_amounts(ledger, price, n_in, max_out, use_hold)
    if isinstance(planned, BudgetExceeded):
        return planned
    held = ledger.try_reserve(planned[0], role=role, use_hold=use_hold)
    if isinstance(held, BudgetExceeded):
        return held
    settings = ModelSettings(**cfg.settings)
    settings["max_tokens"] = planned[1]
    settings["tool_choice"] = tool.name if tool else "none"
    try:
        response = await cfg.model.request(messages, tools, settings)
    except Exception:
        ledger.refund(held)
        raise
    ledger.commit(held, _Loop._actual(response.usage, price, n_in))
    return response.message


def _route(update: Mapping[str, Any]) -> str:
    phase = update.get("phase", "act")
    return {"tools": "tools", "answer": "answer", "act": "model"}.get(phase, END)


def _routed(node: Callable[[AgentState, RunnableConfig], Awaitable[dict[str, Any]]]) -> Any:
    """The node's update plus where to go next, as one ``Command`` (no separate routing step per turn)."""

    async def run(state: AgentState, config: RunnableConfig) -> Command[str]:
        update = await node(state, config)
        return Command(update=update, goto=_route(update))

    run.__name__ = getattr(node, "__name__", "node")
    return run


def build_graph(cfg: LoopConfig) -> StateGraph[AgentState]:
    """The uncompiled graph (compile it with your own checkpointer, or embed it as a subgraph)."""
    loop = _Loop(cfg)
    graph: StateGraph[AgentState] = StateGraph(AgentState)
    graph.add_node("model", _routed(loop.model_node), destinations=("tools", "answer", END))
    graph.add_node("tools", _routed(loop.tools_node), destinations=("model", "answer"))
    graph.add_node("answer", loop.answer_node)
    graph.add_edge(START, "model")
    graph.add_edge("answer", END)
    return graph
