"""What both integrations share: a run's metering kept per run key (rebuilt from the ledger snapshot the host
framework keeps in its state), a model call and a tool call of the host made through budgetgraph's meter, so
that every rule (reserve the bound before, commit the truth after, refuse what does not fit, charge a lying
usage report at its bound, hold the final answer's reserve) is the one ``budgetgraph.meter`` implements."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from ..agents.loop.tools import GIVE_UP_AFTER, refused_turns
from ..agents.result import stop_info
from ..agents.state import StopInfo
from ..budget.block import REGIME_POLICY, render_budget_block
from ..budget.ledger import Ledger
from ..budget.limits import Budget
from ..budget.prices import ModelPrice, PriceTable
from ..budget.store import Account
from ..errors import BudgetExceeded, ConfigError, ModelError, Overrun
from ..meter import Answered, MeteredRun, refusal_text
from ..models.base import upper_bound_tokens
from ..models.messages import Message, ModelResponse, ModelSettings, ToolCall, ToolSchema
from ..tools.base import Failed, Tool, Used

__all__ = ["ChargedTool", "HostModel", "Keeper", "ModelOutcome", "ToolRun", "merge_ledger", "run_blocking"]

T = TypeVar("T")


def run_blocking(work: Coroutine[Any, Any, T]) -> T:
    """Run the metering of a host's synchronous call (``invoke``) to its end: on this thread when no event
    loop runs here, else on a thread of its own (a sync call made from inside a running loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


def merge_ledger(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> dict[str, Any]:
    """The state's ledger when parallel steps each write a snapshot of the same live ledger: per resource the
    larger spend (spend only grows), the newer reservations; what a rebuilt ledger counts is never less than
    what was really spent."""
    if not old:
        return dict(new or {})
    if not new:
        return dict(old)
    spent = dict(old.get("spent") or {})
    for key, value in (new.get("spent") or {}).items():
        spent[key] = (
            value if key not in spent or Decimal(str(value)) > Decimal(str(spent[key])) else spent[key]
        )
    return {**old, **new, "spent": spent}


@dataclass(frozen=True, slots=True)
class ChargedTool:
    """How one of the host's tools is charged: ``price`` dollars a unit, ``units`` (the name of a list argument
    whose length counts: a batched query list; one unit a call by default), ``budget_key`` (the cap it draws
    from; its name by default)."""

    price: Decimal | float | str = 0
    units: str | None = None
    budget_key: str | None = None


_RUNNING: contextvars.ContextVar[Callable[[dict[str, Any]], Awaitable[Any]] | None] = contextvars.ContextVar(
    "budgetgraph_host_tool", default=None
)
"""The host's executor of the tool call being run (set around the meter's run of that call)."""


async def _host_tool(**arguments: Any) -> Any:
    execute = _RUNNING.get()
    if execute is None:  # only the meter runs it, inside ToolRun.run
        raise ConfigError("a host framework's tool ran outside its metered call")
    return await execute(arguments)


@dataclass(slots=True)
class ToolRun:
    """One tool call of the host through the meter: admitted (or refused, with the text the model reads), run
    by the host's own executor, settled. ``result`` is what the host's executor returned."""

    text: str = ""
    status: str = "ok"
    result: Any = None
    ran: bool = False
    note: str = ""
    raised: BaseException | None = None
    resource: str = ""

    @classmethod
    async def of(
        cls,
        run: MeteredRun,
        call: ToolCall,
        execute: Callable[[dict[str, Any]], Awaitable[Any]],
        read: Callable[[Any], tuple[str, str, Any]],
    ) -> ToolRun:
        """``execute(arguments)`` runs the host's tool with the (possibly trimmed) arguments; ``read(result)``
        says what it returned: its text, its status (``ok``, ``error``) and a reported cost (None: none)."""
        got = run.tools.admit(call)
        if isinstance(got, Answered):
            return cls(got.text, got.status)
        if isinstance(got, BudgetExceeded):
            return cls(refusal_text(got) + " This call was not run.", "refused", resource=got.resource)
        out = cls(note=got.note)

        async def host(arguments: dict[str, Any]) -> Any:
            try:
                out.result = await execute(arguments)
            except (
                Exception
            ) as exc:  # the host's own control flow (a retry, an interrupt): charged, then raised
                out.ran, out.raised = True, exc
                return Failed(f"{type(exc).__name__}: {exc}")
            out.ran = True
            text, status, cost = read(out.result)
            body: Any = Failed(text) if status == "error" else text
            return Used(body, cost=cost) if cost is not None else body

        token = _RUNNING.set(host)
        try:
            outcome = await run.tools.run(got)
        finally:
            _RUNNING.reset(token)
        out.text, out.status = outcome.text, outcome.status
        if outcome.overrun is not None:
            raise outcome.overrun
        if out.raised is not None:
            raise out.raised
        return out


@dataclass(slots=True)
class ModelOutcome:
    """A metered model call of the host: the reply (None when no call could be paid for), whether it was the
    final answer on the held reserve, and why the run must end (None: it goes on)."""

    response: ModelResponse | None
    final: bool = False
    stop: StopInfo | None = None


FINAL_NOTE = "{reason} No more tool calls are possible. Give your best final answer now from what you found."
"""The user turn added to the request that writes the final answer on the reserve (request-only)."""


class HostModel:
    """The host's model call as a budgetgraph ``ChatModel``: ``send(max_tokens, tools_offered, added)`` makes
    the one request (``added``: user turns the meter appended to the host's ``base`` messages, sent after them);
    the meter counts, reserves, sends with the bound, and settles what it returns."""

    def __init__(
        self,
        name: str,
        price: ModelPrice | None,
        send: Callable[..., Awaitable[ModelResponse]],
        base: int = 0,
    ) -> None:
        self.name = name
        self.price = price
        self._send = send
        self.base = base

    async def request(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema], settings: ModelSettings
    ) -> ModelResponse:
        added = [m.content for m in messages[self.base :]]
        return await self._send(int(settings.get("max_tokens") or 0), [t.name for t in tools], added)

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSchema]) -> int:
        return upper_bound_tokens(messages, tools)  # a proven bound: the host's tokenizer is not ours


@dataclass
class Keeper:
    """The budget of one integration: its caps (``budget``), prices, an ``account`` of a budget store shared
    across runs and processes, how the host's tools are charged, and the output bounds of a call and of the
    final answer. It keeps each run's metering by the run's key (at most ``keep`` runs in memory)."""

    budget: Budget
    prices: PriceTable = field(default_factory=PriceTable)
    account: Account | None = None
    tools: Mapping[str, ChargedTool] = field(default_factory=dict)
    max_tokens: int = 1024
    answer_max_tokens: int = 512
    keep: int = 4096
    _runs: OrderedDict[str, MeteredRun] = field(default_factory=OrderedDict, init=False)
    _tools: dict[str, Tool] = field(default_factory=dict, init=False)
    _turns: dict[int, _Turn] = field(default_factory=dict, init=False)

    @classmethod
    def of(
        cls,
        budget: Budget | str,
        tools: Mapping[str, ChargedTool] | None,
        prices: PriceTable | None,
        account: Account | None,
        max_tokens: int,
        answer_max_tokens: int,
    ) -> Keeper:
        """An integration's keeper from its arguments: a budget string names the tools' budget keys."""
        names = list(dict.fromkeys((c.budget_key or n) for n, c in (tools or {}).items()))
        return cls(
            Budget.parse(budget, names) if isinstance(budget, str) else budget,
            prices or PriceTable(),
            account,
            dict(tools or {}),
            max_tokens=max_tokens,
            answer_max_tokens=answer_max_tokens,
        )

    def run(self, key: str | None, snapshot: Mapping[str, Any] | None) -> tuple[str, MeteredRun]:
        """The run of ``key`` (a new key and run when None): live in this process, or rebuilt from the ledger
        snapshot its host state holds (what was in flight counts as spent)."""
        key = key or uuid.uuid4().hex
        live = self._runs.get(key)
        if live is None:
            ledger = (
                Ledger.from_snapshot(snapshot, account=self.account)
                if snapshot
                else Ledger(self.budget, account=self.account)
            )
            live = MeteredRun(ledger, HostModel("host", None, _never), {}, self.prices)
            self._runs[key] = live
            self._turns[id(live)] = _Turn()
            while len(self._runs) > self.keep:
                self._turns.pop(id(self._runs.popitem(last=False)[1]), None)
        return key, live

    def forget(self, key: str | None) -> None:
        """Drop the live metering of ``key``: its next call rebuilds it from the host state's snapshot (a new
        invocation of a thread, so that the time between invocations is not counted against ``seconds``)."""
        live = self._runs.pop(key, None) if key else None
        if live is not None:
            self._turns.pop(id(live), None)

    async def tool_call(
        self,
        run: MeteredRun,
        call: ToolCall,
        execute: Callable[[dict[str, Any]], Awaitable[Any]],
        read: Callable[[Any], tuple[str, str, Any]],
    ) -> ToolRun:
        """One tool call of the host through the meter (see :meth:`ToolRun.of`), noted in the run's turn."""
        turn = self._turns.setdefault(id(run), _Turn())
        turn.calls += 1
        done = await ToolRun.of(run, call, execute, read)
        if done.status == "refused":
            turn.refused.append(done.resource)
        return done

    def tool(self, run: MeteredRun, name: str, description: str, schema: Mapping[str, Any]) -> Tool:
        """The budgetgraph tool a host's tool is charged as (its name, schema, price, units and cap)."""
        charged = self.tools.get(name, ChargedTool())
        made = self._tools.get(name)
        if made is None:
            made = Tool.from_schema(
                name,
                description,
                schema,
                _host_tool,
                price=charged.price,
                units=charged.units,
                budget_key=charged.budget_key,
                timeout=None,
            )
            self._tools[name] = made
        if run.tools.tools.get(name) is not made:
            run.tools.tools = {**run.tools.tools, name: made}
        return made

    async def model_call(
        self,
        run: MeteredRun,
        model: HostModel,
        messages: list[Message],
        tools: list[ToolSchema],
        settings: ModelSettings,
    ) -> ModelOutcome:
        """One acting call with the final answer's reserve held back; when it does not fit (or no capped tool
        is left), the final answer on the reserve with no tools; when that does not fit either, no call."""
        meter = run.for_model(model)
        funded = self.funded(run, tools)
        n_in = meter.count(messages, funded)
        turn = self._turns.setdefault(id(run), _Turn())
        all_refused = bool(turn.calls) and len(turn.refused) == turn.calls
        turn.in_a_row, given_up = refused_turns(turn.in_a_row, all_refused), turn.refused[:1]
        turn.calls, turn.refused = 0, []
        try:
            if tools and not funded:
                spent = self.exhausted(run)
                raise BudgetExceeded(spent, "1 call", 0, run.ledger.limits.get(spent, 0))
            if turn.in_a_row >= GIVE_UP_AFTER:  # the model is not using what is left: it answers
                raise BudgetExceeded(given_up[0], "every tool call was refused", 0, 0)
            meter.set_hold(n_in, self.answer_max_tokens)
            chosen = ModelSettings(**settings)
            return ModelOutcome(
                await meter.call(messages, funded, chosen, role="act", max_tokens=self.max_tokens, n_in=n_in)
            )
        except Overrun as exc:
            return ModelOutcome(None, stop=_stop("overrun", exc.resource, str(exc)))
        except BudgetExceeded as exc:
            refused = exc
        if refused.resource in ("seconds", "context_window"):
            return ModelOutcome(None, stop=_stop("budget_exhausted", refused.resource, str(refused)))
        answer = ModelSettings(**settings)
        answer["tool_choice"] = "none"
        why = _stop("budget_exhausted", refused.resource, str(refused))
        model.base = len(messages)
        told = [*messages, Message.user(FINAL_NOTE.format(reason=_reason(why)))]
        try:
            reply = await meter.call(
                told, [], answer, role="answer", max_tokens=self.answer_max_tokens, use_hold=True
            )
        except Overrun as exc:
            return ModelOutcome(None, stop=_stop("overrun", exc.resource, str(exc)))
        except BudgetExceeded:
            return ModelOutcome(None, stop=why)
        return ModelOutcome(reply, final=True, stop=why)

    def funded(self, run: MeteredRun, tools: list[ToolSchema]) -> list[ToolSchema]:
        """The offered tools with units left (a tool at zero is not offered: the others stay usable)."""
        keys = {n: (self.tools.get(n) or ChargedTool()).budget_key or n for n in (t.name for t in tools)}
        return [t for t in tools if run.ledger.tool_remaining(keys[t.name]) != 0]

    def exhausted(self, run: MeteredRun) -> str:
        if run.ledger.remaining("tool_calls") == 0:
            return "tool_calls"
        return next(
            (k for k in run.ledger.limits if k.startswith("tool:") and run.ledger.remaining(k) == 0),
            "tool_calls",
        )

    @staticmethod
    def block(run: MeteredRun) -> str:
        """The ``<budget>`` block the model reads after a tool result ("" with no caps)."""
        return render_budget_block(run.ledger, REGIME_POLICY) if run.ledger.limits else ""


@dataclass(slots=True)
class _Turn:
    """A run's current turn: its tool calls and the resources of those refused; refused turns in a row."""

    calls: int = 0
    refused: list[str] = field(default_factory=list)
    in_a_row: int = 0


def _reason(stop: StopInfo) -> str:
    resource = str(stop.get("resource") or "")
    return (
        f"The {resource.removeprefix('tool:')} budget is exhausted."
        if resource
        else "The budget is exhausted."
    )


def _stop(kind: str, resource: str, message: str) -> StopInfo:
    return stop_info(kind, resource, message)


async def _never(*_: Any) -> ModelResponse:  # pragma: no cover - a run's own model is never called here
    raise ModelError("an integration's run has no model of its own")
