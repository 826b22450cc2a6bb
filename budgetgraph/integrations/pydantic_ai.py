"""The exact ledger inside a pydantic-ai ``Agent``, as one capability (``[pydantic-ai]`` extra)::

    budget = BudgetCapability("search=3,tokens=4000,usd=0.05")
    agent = Agent(model, tools=[search], capabilities=[budget])
    result = await agent.run("...")
    budget.spent(result.run_id), budget.stop(result.run_id)

Every attempt at a model request goes through a wrapper model (``get_wrapper_model``: a retry or a fallback
model is an attempt of its own, reserved on its own): its bound (the request serialized, an upper bound on its
tokens, and an output bound lowered to what the caps allow, passed as ``max_tokens``) is reserved before it is
sent and the reported usage committed after, through budgetgraph's meter (a negative, impossible or unmeasured
usage is charged at the bound); the final answer's reserve is held back. ``wrap_tool_execute`` charges each
tool call its units, price or reported cost (``ToolReturn(metadata={"cost": ...})``) and returns the refusal,
which the model reads, for a call that does not fit. A run's ledger is kept per run (``scope="run"``) or per
conversation (``scope="conversation"``); ``account=`` caps a user across runs and processes.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, Literal

from .._extras import require
from ..agents.state import StopInfo
from ..budget.limits import Budget
from ..budget.prices import PriceTable
from ..budget.store import Account
from ..errors import ConfigError, ModelError
from ..meter import MeteredRun
from ..models.messages import (
    Message,
    ModelResponse,
    ModelSettings,
    RequestUsage,
    ToolCall,
    ToolSchema,
    reported_count,
)
from ._metering import ChargedTool, HostModel, Keeper

require("pydantic_ai", "pydantic-ai")

import pydantic_core  # noqa: E402
from pydantic_ai import messages as pm  # noqa: E402
from pydantic_ai.capabilities import AbstractCapability  # noqa: E402
from pydantic_ai.models import Model, ModelRequestParameters  # noqa: E402
from pydantic_ai.models.wrapper import WrapperModel  # noqa: E402
from pydantic_ai.tools import RunContext, ToolDefinition  # noqa: E402

__all__ = ["BudgetCapability", "ChargedTool"]

_URLS = (pm.ImageUrl, pm.AudioUrl, pm.VideoUrl, pm.DocumentUrl)


def _part_text(part: Any) -> str:
    """A part's text for counting: its content (files by their bytes, base64: more than a provider counts),
    any other part serialized whole."""
    if isinstance(part, (pm.ToolReturnPart, pm.RetryPromptPart)):
        return part.model_response_str() if isinstance(part, pm.ToolReturnPart) else part.model_response()
    if isinstance(part, pm.ToolCallPart):
        return part.args_as_json_str()
    content = getattr(part, "content", None)
    if isinstance(content, str):
        return content
    items = content if isinstance(content, (list, tuple)) else [content if content is not None else part]
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, _URLS):
            raise ConfigError(
                "a pydantic-ai request refers to a file by URL, which the provider fetches and counts: its "
                "tokens cannot be bounded before the call; pass the file as BinaryContent under a token or "
                "dollar cap"
            )
        elif isinstance(item, pm.BinaryContent):
            out.append(item.base64)
        else:
            out.append(pydantic_core.to_json(item, fallback=str).decode())
    return "".join(out)


def _request_text(messages: list[pm.ModelMessage], parameters: ModelRequestParameters) -> list[Message]:
    """The request as budgetgraph messages for counting: the instructions, then every part's text, each with
    the names a provider adds around it (an upper bound on what it counts)."""
    instructions = "\n".join(str(getattr(p, "content", "")) for p in (parameters.instruction_parts or []))
    out = [Message.system(instructions)] if instructions else []
    for message in messages:
        parts = getattr(message, "parts", ())
        text = "\n".join(f"{getattr(p, 'tool_name', '') or ''} {_part_text(p)}" for p in parts)
        out.append(Message.assistant(text) if isinstance(message, pm.ModelResponse) else Message.user(text))
    return out


def _schema(tool: ToolDefinition) -> ToolSchema:
    return ToolSchema(tool.name, tool.description or "", dict(tool.parameters_json_schema or {}))


def _usage(response: pm.ModelResponse) -> RequestUsage:
    """The response's usage, checked where it enters (unmeasured: counted here, as an upper bound)."""
    usage = response.usage
    if usage.unmeasured_requests or not usage.has_values():
        return RequestUsage(estimated=True)
    faults: list[str] = []
    return RequestUsage(
        input_tokens=reported_count("input_tokens", usage.input_tokens, faults),
        output_tokens=reported_count("output_tokens", usage.output_tokens, faults),
        cached_input_tokens=reported_count("cache_read", usage.cache_read_tokens, faults, required=False),
        fault=", ".join(faults) or None,
    )


def _ours(response: pm.ModelResponse) -> Message:
    text = "".join(p.content for p in response.parts if isinstance(p, pm.TextPart))
    calls = [
        ToolCall(p.tool_call_id, p.tool_name, p.args_as_dict())
        for p in response.parts
        if isinstance(p, pm.ToolCallPart)
    ]
    return Message.assistant(text, calls)


NO_ANSWER = "(no answer: the budget ended the run before the model gave one)"
"""The final text when a budget ends a run before the model wrote any (pydantic-ai needs one to end a run)."""


def _said(part: pm.TextPart | pm.ToolCallPart) -> bool:
    return isinstance(part, pm.ToolCallPart) or bool(part.content.strip())


def _last_text(messages: list[pm.ModelMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, pm.ModelResponse):
            text = "".join(p.content for p in message.parts if isinstance(p, pm.TextPart)).strip()
            if text:
                return text
    return ""


class _MeteredModel(WrapperModel):
    """The model of one attempt, sent through the run's meter."""

    def __init__(self, wrapped: Model, owner: BudgetCapability) -> None:
        super().__init__(wrapped)
        self._owner = owner

    async def request(
        self,
        messages: list[pm.ModelMessage],
        model_settings: Any,
        model_request_parameters: ModelRequestParameters,
    ) -> pm.ModelResponse:
        owner, keeper = self._owner, self._owner.keeper
        run = owner.metered
        params = model_request_parameters
        by_name = {t.name: t for t in params.function_tools}
        got: dict[str, pm.ModelResponse] = {}

        async def send(max_tokens: int, offered: list[str], added: list[str]) -> ModelResponse:
            tools = [by_name[n] for n in offered if n in by_name]
            settings = {**(model_settings or {}), "max_tokens": max_tokens}
            sent = replace(params, function_tools=tools)
            told = [*messages, *(pm.ModelRequest(parts=[pm.UserPromptPart(text)]) for text in added)]
            got["reply"] = reply = await self.wrapped.request(told, settings, sent)  # type: ignore[arg-type]
            return ModelResponse(_ours(reply), _usage(reply), self.wrapped.model_name)

        ours = _request_text(messages, params)
        host = HostModel(owner.model or self.wrapped.model_name, None, send, len(ours))
        schemas = [_schema(t) for t in params.function_tools] + [_schema(t) for t in params.output_tools]
        try:
            outcome = await keeper.model_call(run, host, ours, schemas, ModelSettings())
        except ModelError as exc:  # the model's own failure: raised as it is, for pydantic-ai's own handling
            raise (exc.__cause__ or exc) from None
        if outcome.stop is not None:
            owner.stops[owner.key] = outcome.stop
        reply = got.get("reply")
        if (
            outcome.response is None or reply is None
        ):  # nothing could be paid for: end with the best text so far
            said = (
                "" if reply is None else "".join(p.content for p in reply.parts if isinstance(p, pm.TextPart))
            )
            return pm.ModelResponse(
                parts=[pm.TextPart(said.strip() or _last_text(messages) or NO_ANSWER)],
                model_name=self.wrapped.model_name,
            )
        if outcome.stop is not None:  # the final answer: no further function tool calls
            kept = [p for p in reply.parts if not (isinstance(p, pm.ToolCallPart) and p.tool_name in by_name)]
            if not any(isinstance(p, (pm.TextPart, pm.ToolCallPart)) and _said(p) for p in kept):
                kept.append(pm.TextPart(_last_text(messages) or NO_ANSWER))
            reply = replace(reply, parts=kept)
        return reply

    @asynccontextmanager
    async def request_stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise ConfigError(
            "BudgetCapability meters whole responses: run the agent with run() or run_sync() (a streamed "
            "response reaches the reader before its usage can be settled)"
        )
        yield  # pragma: no cover


class BudgetCapability(AbstractCapability[Any]):
    """budgetgraph's ledger for a pydantic-ai ``Agent``: ``budget`` (``"search=3,tokens=4000,usd=0.05"`` or a
    :class:`~budgetgraph.Budget`), ``tools`` (``{"search": ChargedTool(price="0.001", units="queries")}``),
    ``prices``, ``model`` (the name its price is looked up by), ``account`` (a budget store's), ``scope``
    (one ledger per run, or per conversation), ``show_budget`` (a ``<budget>`` block after each tool result),
    ``max_tokens`` and ``answer_max_tokens``."""

    def __init__(
        self,
        budget: Budget | str,
        *,
        tools: Mapping[str, ChargedTool] | None = None,
        prices: PriceTable | None = None,
        model: str | None = None,
        account: Account | None = None,
        scope: Literal["run", "conversation"] = "run",
        show_budget: bool = False,
        max_tokens: int = 1024,
        answer_max_tokens: int = 512,
    ) -> None:
        self.keeper = Keeper.of(budget, tools, prices, account, max_tokens, answer_max_tokens)
        self.model = model
        self.scope = scope
        self.show_budget = show_budget
        self.stops: dict[str, StopInfo] = {}
        self.key = ""
        self._metered: MeteredRun | None = None

    @property
    def metered(self) -> MeteredRun:
        if self._metered is None:
            raise ConfigError("BudgetCapability is used through an Agent's run (its for_run instance)")
        return self._metered

    async def for_run(self, ctx: RunContext[Any]) -> BudgetCapability:
        """A fresh instance for the run, on the run's (or conversation's) ledger."""
        key = (ctx.conversation_id if self.scope == "conversation" else None) or ctx.run_id
        mine = copy.copy(self)
        mine.key, mine._metered = self.keeper.run(key, None)
        return mine

    def get_wrapper_model(self, model: Model) -> Model | None:
        return _MeteredModel(model, self)

    async def wrap_tool_execute(
        self,
        ctx: RunContext[Any],
        *,
        call: pm.ToolCallPart,
        tool_def: ToolDefinition,
        args: Any,
        handler: Any,
    ) -> Any:
        if tool_def.kind != "function":  # output, external and deferred tools are not run here: not charged
            return await handler(args)
        run = self.metered
        self.keeper.tool(
            run, tool_def.name, tool_def.description or "", dict(tool_def.parameters_json_schema or {})
        )
        arguments = call.args_as_dict()  # the model's own JSON, which budgetgraph's meter parses and counts

        async def execute(given: dict[str, Any]) -> Any:
            return await handler(_trimmed(dict(args), given))

        done = await self.keeper.tool_call(
            run, ToolCall(call.tool_call_id, call.tool_name, arguments), execute, _read
        )
        block = "\n\n" + self.keeper.block(run) if self.show_budget and run.ledger.limits else ""
        if done.ran and not done.note and not block:
            return done.result
        return done.text + block

    def spent(self, key: str) -> dict[str, Any]:
        """What the run (or conversation) ``key`` spent so far, per resource."""
        return dict(self.keeper.run(key, None)[1].ledger.snapshot().get("spent") or {})

    def stop(self, key: str) -> StopInfo | None:
        """Why a budget ended the run ``key`` (kind, resource, message), None when none did."""
        return self.stops.get(key)


def _trimmed(validated: dict[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """pydantic-ai's validated arguments with a batch cut as the meter cut it (its first items)."""
    for key, value in given.items():
        kept = validated.get(key)
        if isinstance(value, list) and isinstance(kept, (list, tuple)) and len(value) < len(kept):
            validated[key] = kept[: len(value)]
    return validated


def _read(result: Any) -> tuple[str, str, Any]:
    """What a pydantic-ai tool returned: its text, ``ok``, a cost its ``ToolReturn`` metadata reports."""
    if isinstance(result, pm.ToolReturn):
        meta = result.metadata
        cost = meta.get("cost") if isinstance(meta, Mapping) else None
        return str(result.return_value), "ok", cost
    return result if isinstance(result, str) else str(result), "ok", None
