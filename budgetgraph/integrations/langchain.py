"""The exact ledger inside a LangChain ``create_agent`` agent, as one middleware (``[langchain]`` extra)::

    agent = create_agent(model, tools, middleware=[BudgetMiddleware("search=3,tokens=4000,usd=0.05")])

``awrap_model_call`` reserves each model call's bound before it is sent (its input, counted as an upper bound,
and an output bound lowered to what the caps allow, passed as ``max_tokens``) and commits the reported usage
after, through budgetgraph's meter (a negative, impossible or missing usage report is charged at the bound);
the final answer's reserve is held back, so a run whose tools or tokens run out still answers, on the reserve
and with no tools. ``awrap_tool_call`` charges each tool call its units (a batched list argument: one unit an
item, a batch that does not fit runs its first items), its price or the cost it reports (``artifact`` with a
``cost``), and refuses a call that does not fit with a ``ToolMessage(status="error")`` the model reads; in a
parallel batch the calls that fit run. The ledger lives in the graph state (``budgetgraph_ledger``), so a
checkpointed thread resumes with what it spent; ``account=`` (a SQLite or Redis budget store's) caps a user
across runs and processes. When a budget ends the run, ``budget_stop`` in the state says why (a typed stop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any

from .._extras import require
from ..agents.state import StopInfo
from ..budget.limits import Budget
from ..budget.prices import PriceTable
from ..budget.store import Account
from ..errors import ModelError
from ..models.messages import (
    Message,
    ModelResponse,
    ModelSettings,
    RequestUsage,
    ToolCall,
    ToolSchema,
    reported_count,
)
from ._metering import ChargedTool, HostModel, Keeper, merge_ledger, run_blocking

require("langchain.agents", "langchain")

from langchain.agents.middleware import AgentMiddleware, AgentState  # noqa: E402
from langchain.agents.middleware.types import ExtendedModelResponse, ModelRequest  # noqa: E402
from langchain.agents.middleware.types import ModelResponse as LCResponse  # noqa: E402
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage  # noqa: E402
from langchain_core.utils.function_calling import convert_to_openai_tool  # noqa: E402
from langgraph.types import Command  # noqa: E402
from typing_extensions import NotRequired  # noqa: E402

__all__ = ["BudgetMiddleware", "BudgetState", "ChargedTool"]


class BudgetState(AgentState):  # type: ignore[type-arg]
    """The agent's state with the run's ledger (merged across parallel tool calls), its key and its stop."""

    budgetgraph_ledger: NotRequired[Annotated[dict[str, Any], merge_ledger]]
    budgetgraph_run: NotRequired[str]
    budget_stop: NotRequired[StopInfo | None]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            b if isinstance(b, str) else str(b.get("text", b)) if isinstance(b, dict) else str(b)
            for b in content
        )
    return str(content)


def _ours(messages: list[BaseMessage]) -> list[Message]:
    """LangChain messages as budgetgraph's, for counting (every content block as text: an upper bound)."""
    out: list[Message] = []
    for m in messages:
        text = _text(m.content)
        if isinstance(m, AIMessage):
            calls = [
                ToolCall(str(c.get("id") or "call"), c["name"], dict(c.get("args") or {}))
                for c in m.tool_calls
            ]
            out.append(Message.assistant(text, calls))
        elif isinstance(m, ToolMessage):
            out.append(Message.tool(text, m.tool_call_id, m.name))
        elif m.type == "system":
            out.append(Message.system(text))
        else:
            out.append(Message.user(text))
    return out


def _schema(tool: Any) -> ToolSchema:
    spec = tool if isinstance(tool, dict) else convert_to_openai_tool(tool)
    fn = spec.get("function", spec)
    return ToolSchema(
        str(fn.get("name", "")), str(fn.get("description", "")), dict(fn.get("parameters") or {})
    )


def _usage(ai: AIMessage) -> RequestUsage:
    """The reply's usage, checked where it enters (none reported: counted here, as an upper bound)."""
    meta = getattr(ai, "usage_metadata", None)
    if not meta:
        return RequestUsage(estimated=True)
    faults: list[str] = []
    details = meta.get("input_token_details") or {}
    return RequestUsage(
        input_tokens=reported_count("input_tokens", meta.get("input_tokens"), faults),
        output_tokens=reported_count("output_tokens", meta.get("output_tokens"), faults),
        cached_input_tokens=reported_count("cache_read", details.get("cache_read"), faults, required=False),
        fault=", ".join(faults) or None,
    )


def _reply(result: Any) -> AIMessage:
    if isinstance(result, AIMessage):
        return result
    messages = (
        getattr(result, "result", None)
        or getattr(getattr(result, "model_response", None), "result", None)
        or []
    )
    return next((m for m in messages if isinstance(m, AIMessage)), AIMessage(""))


def _model_name(model: Any) -> str:
    return str(getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__)


class BudgetMiddleware(AgentMiddleware):  # type: ignore[type-arg]
    """budgetgraph's ledger for a ``create_agent`` agent: ``budget`` (``"search=3,tokens=4000,usd=0.05"`` or a
    :class:`~budgetgraph.Budget`), ``tools`` (how each tool is charged: ``{"search": ChargedTool(price="0.001",
    units="queries")}``), ``prices`` (models and tools), ``model`` (the name its price is looked up by; the chat
    model's own by default), ``account`` (a budget store's, shared across runs and processes), ``show_budget``
    (a ``<budget>`` block after each tool result), ``max_tokens`` and ``answer_max_tokens`` (the output bound of
    a call and of the final answer)."""

    state_schema = BudgetState

    def __init__(
        self,
        budget: Budget | str,
        *,
        tools: Mapping[str, ChargedTool] | None = None,
        prices: PriceTable | None = None,
        model: str | None = None,
        account: Account | None = None,
        show_budget: bool = False,
        max_tokens: int = 1024,
        answer_max_tokens: int = 512,
    ) -> None:
        super().__init__()
        self.keeper = Keeper.of(budget, tools, prices, account, max_tokens, answer_max_tokens)
        self.model = model
        self.show_budget = show_budget
        self._schemas: dict[int, tuple[Any, ToolSchema]] = {}

    def _schema(self, tool: Any) -> ToolSchema:
        """A tool's schema, converted once per tool object (a dict tool: each time, it is cheap)."""
        if isinstance(tool, dict):
            return _schema(tool)
        known = self._schemas.get(id(tool))
        if known is None or known[0] is not tool:
            known = self._schemas[id(tool)] = (tool, _schema(tool))
        return known[1]

    def before_agent(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        """A new invocation of the thread: its ledger is rebuilt from the state (idle time is not spent)."""
        self.keeper.forget(state.get("budgetgraph_run"))
        return None

    async def abefore_agent(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        return self.before_agent(state, runtime)

    async def awrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[Any]]
    ) -> ExtendedModelResponse:
        state: Any = request.state
        key, run = self.keeper.run(state.get("budgetgraph_run"), state.get("budgetgraph_ledger"))
        system = [request.system_message] if request.system_message is not None else []
        messages = _ours([*system, *request.messages])
        schemas = [self._schema(t) for t in request.tools]
        by_name = {schema.name: t for schema, t in zip(schemas, request.tools, strict=True)}
        sent: dict[str, Any] = {}

        async def send(max_tokens: int, offered: list[str], added: list[str]) -> ModelResponse:
            tools = [by_name[n] for n in offered if n in by_name]
            settings = {**request.model_settings, "max_tokens": max_tokens}
            choice = request.tool_choice if tools else None
            told = [*request.messages, *(HumanMessage(text) for text in added)]
            sent["result"] = await handler(
                request.override(messages=told, tools=tools, tool_choice=choice, model_settings=settings)
            )
            ai = _reply(sent["result"])
            calls = [
                ToolCall(str(c.get("id") or "call"), c["name"], dict(c.get("args") or {}))
                for c in ai.tool_calls
            ]
            return ModelResponse(
                Message.assistant(_text(ai.content), calls), _usage(ai), _model_name(request.model)
            )

        host = HostModel(self.model or _model_name(request.model), None, send, len(messages))
        try:
            outcome = await self.keeper.model_call(run, host, messages, schemas, ModelSettings())
        except ModelError as exc:  # the chat model's own failure: raised as it is, for LangChain's retries
            raise (exc.__cause__ or exc) from None
        update: dict[str, Any] = {"budgetgraph_run": key, "budgetgraph_ledger": run.ledger.snapshot()}
        if outcome.stop is not None:
            update["budget_stop"] = outcome.stop
        inner = sent.get("result")
        if isinstance(inner, ExtendedModelResponse):  # an inner middleware's own update goes along
            if inner.command is not None and isinstance(inner.command.update, dict):
                update = {**inner.command.update, **update}
            inner = inner.model_response
        if outcome.response is None or inner is None:  # no call could be paid for, or it overran: end here
            said = reply_text(request.messages) if inner is None else _text(_reply(inner).content)
            return ExtendedModelResponse(LCResponse(result=[AIMessage(said)]), Command(update=update))
        reply = _reply(inner)
        kept = [c for c in reply.tool_calls if c["name"] not in by_name]
        if outcome.stop is not None and len(kept) < len(
            reply.tool_calls
        ):  # the run stops: no more tool calls
            reply = reply.model_copy(update={"tool_calls": kept})
            return ExtendedModelResponse(LCResponse(result=[reply]), Command(update=update))
        response = inner if isinstance(inner, LCResponse) else LCResponse(result=[reply])
        return ExtendedModelResponse(response, Command(update=update))

    def wrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], Any]
    ) -> ExtendedModelResponse:
        """The synchronous path (``invoke``): the same metering, the handler on a worker thread (so that the
        seconds cap can stop waiting for it)."""

        async def call(given: ModelRequest) -> Any:
            return await asyncio.to_thread(handler, given)

        return run_blocking(self.awrap_model_call(request, call))

    def wrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        """The synchronous path of :meth:`awrap_tool_call`."""

        async def call(given: Any) -> Any:
            return await asyncio.to_thread(handler, given)

        return run_blocking(self.awrap_tool_call(request, call))

    async def awrap_tool_call(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        state: Any = request.state
        key, run = self.keeper.run(state.get("budgetgraph_run"), state.get("budgetgraph_ledger"))
        call = request.tool_call
        if request.tool is not None:
            schema = self._schema(request.tool)
            self.keeper.tool(run, schema.name, schema.description, schema.parameters)
        ours = ToolCall(str(call.get("id") or "call"), str(call["name"]), dict(call.get("args") or {}))

        async def execute(arguments: dict[str, Any]) -> Any:
            return await handler(request.override(tool_call={**call, "args": arguments}))

        done = await self.keeper.tool_call(run, ours, execute, _read)
        block = "\n\n" + self.keeper.block(run) if self.show_budget and run.ledger.limits else ""
        message = ToolMessage(
            done.text + block,
            tool_call_id=ours.id,
            name=ours.name,
            status="error" if done.status in ("error", "refused") else "success",
            artifact=getattr(done.result, "artifact", None),
        )
        return Command(update={"messages": [message], "budgetgraph_ledger": run.ledger.snapshot()})


def _read(result: Any) -> tuple[str, str, Any]:
    """What a LangChain tool returned: its text, ``error`` for an error status, a cost its artifact reports."""
    message = result
    if isinstance(result, Command):
        found = (
            [m for m in (result.update or {}).get("messages", []) if isinstance(m, ToolMessage)]
            if isinstance(result.update, dict)
            else []
        )
        message = found[0] if found else ToolMessage("", tool_call_id="")
    status = "error" if getattr(message, "status", "success") == "error" else "ok"
    artifact = getattr(message, "artifact", None)
    cost = artifact.get("cost") if isinstance(artifact, dict) else getattr(artifact, "cost", None)
    return _text(getattr(message, "content", "")), status, cost


def reply_text(messages: Sequence[BaseMessage]) -> str:
    """The latest AI text of the conversation (the best answer so far), "" when there is none."""
    return next(
        (
            _text(m.content)
            for m in reversed(messages)
            if isinstance(m, AIMessage) and _text(m.content).strip()
        ),
        "",
    )
