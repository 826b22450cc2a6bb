"""Tools of any MCP server (stdio or streamable HTTP, through the ``mcp`` SDK) as budgetgraph tools.

    async with mcp_tools(["python", "server.py"], prices={"search": "0.002"}) as tools:
        agent = Agent("local", tools, Budget(tool_calls={"search": 3}))

Every tool gets a price and a budget key (its name unless ``budget_keys`` maps it elsewhere), so per-tool
caps and dollar caps apply to MCP tools exactly as to local ones. A tool result flagged ``is_error`` becomes
a :class:`ToolCallError` the model sees.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from decimal import Decimal
from typing import Any

from .._extras import require
from ..budget.limits import check_name, safe_name
from ..errors import ConfigError, ToolCallError, ToolRejected
from .base import Tool

__all__ = ["mcp_tools"]

_log = logging.getLogger(__name__)


CONNECTION_CLOSED = -32000
"""The JSON-RPC error code the MCP SDK raises a call with when its connection closed under it."""


def _closed(exc: BaseException) -> bool:
    """The connection closed under a call: the SDK's CONNECTION_CLOSED error, or anyio's closed stream."""
    code = getattr(getattr(exc, "error", None), "code", None)
    return code == CONNECTION_CLOSED or type(exc).__name__ in ("ClosedResourceError", "BrokenResourceError")


def _text(result: Any) -> str:
    parts = []
    for block in getattr(result, "content", None) or []:
        text = getattr(block, "text", None)
        parts.append(text if text is not None else f"[{getattr(block, 'type', 'content')} block]")
    if not parts and getattr(result, "structured_content", None) is not None:
        import json

        parts.append(json.dumps(result.structured_content, default=str))
    return "\n".join(parts)


@asynccontextmanager
async def mcp_tools(
    server: str | Sequence[str] | Any,
    *,
    prices: Mapping[str, Decimal | float | str] | Decimal | float | str = 0,
    budget_keys: Mapping[str, str] | None = None,
    include: Sequence[str] | None = None,
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[list[Tool]]:
    """Connect to an MCP server and yield its tools; the connection closes when the block ends.

    ``server``: an ``http(s)://`` URL (streamable HTTP), a command list such as ``["python", "server.py"]``
    (stdio), or an ``mcp.StdioServerParameters``. ``prices``: one price for all tools or a price per tool name.
    """
    require("mcp", "mcp")
    from mcp import Client, StdioServerParameters

    target: Any = server
    if isinstance(target, str) and not target.startswith(("http://", "https://")):
        target = target.split()
    if isinstance(target, list | tuple):
        if not target:
            raise ToolCallError("an MCP stdio server needs a command, e.g. ['python', 'server.py']")
        target = StdioServerParameters(
            command=target[0], args=list(target[1:]), env=dict(env) if env else None
        )
    async with _Connection(lambda: Client(target, read_timeout_seconds=timeout)) as conn:
        listed = await conn.send("list_tools")
        tools: list[Tool] = []
        taken: dict[str, str] = {}
        for spec in listed.tools:
            if include is not None and spec.name not in include:
                continue
            name = _local_name(spec.name, taken)
            price = prices.get(spec.name, prices.get(name, 0)) if isinstance(prices, Mapping) else prices
            key = (budget_keys or {}).get(spec.name) or (budget_keys or {}).get(name)
            tools.append(_wrap(conn, spec, name, price, key, timeout))
        yield tools


def _local_name(remote: object, taken: dict[str, str]) -> str:
    """The name an MCP tool goes by here: its own when it fits the one name grammar, else a safe rename
    (logged); a rename that collides with another tool is refused."""
    if not isinstance(remote, str) or not remote:
        raise ConfigError(f"the MCP server lists a tool with no usable name ({remote!r})")
    name = remote if _fits(remote) else safe_name(remote)
    if name in taken:
        raise ConfigError(
            f"the MCP server's tools {taken[name]!r} and {remote!r} both go by {name!r} here: rename one on "
            "the server, or leave one out with include="
        )
    if name != remote:
        _log.warning(
            "MCP tool %r renamed %r: tool names and budget keys are letters, digits, '_' and '-' (budget it "
            "under the new name)",
            remote,
            name,
        )
    taken[name] = remote
    return name


def _fits(name: str) -> bool:
    try:
        check_name(name)
    except ConfigError:
        return False
    return True


class _Connection:
    """One MCP client session, owned by a task of its own (the SDK's task groups must be entered and left in
    one task), that reconnects once when the server has died: the call under way when it died is charged (it
    may have run), the next call reconnects first, and a failed reconnect refunds that call."""

    def __init__(self, open_client: Any) -> None:
        self.open_client = open_client
        self._jobs: asyncio.Queue[tuple[str, Any, asyncio.Future[Any]] | None] = asyncio.Queue()
        self._owner: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Connection:
        self._owner = asyncio.create_task(self._serve())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._jobs.put_nowait(None)
        if self._owner is not None:
            with suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._owner, 10)

    async def send(self, method: str, *args: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._jobs.put_nowait((method, args, future))
        return await future

    async def call(self, name: str, arguments: Mapping[str, Any]) -> Any:
        return await self.send("call_tool", name, dict(arguments))

    async def _serve(self) -> None:
        while True:
            job = await self._jobs.get()
            if job is None:
                return
            try:
                async with self.open_client() as client:
                    if await self._session(client, job):
                        return
            except Exception as exc:  # could not (re)connect: the waiting call is refunded
                if not job[2].done():
                    job[2].set_exception(ToolRejected(f"cannot reach the MCP server ({exc}); not charged"))

    async def _session(self, client: Any, job: tuple[str, Any, asyncio.Future[Any]] | None) -> bool:
        """Serve jobs on one live session; True when the connection was closed on purpose."""
        running: set[asyncio.Task[None]] = set()
        dead = asyncio.Event()

        async def run(method: str, args: Any, future: asyncio.Future[Any]) -> None:
            try:
                result = await getattr(client, method)(*args)
            except Exception as exc:
                if _closed(exc):
                    dead.set()
                    exc = ToolCallError(
                        f"the MCP server closed the connection during {args[0] if args else method} (it may "
                        "have run; it is charged); the next call reconnects"
                    )
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)

        try:
            while True:
                if job is None:
                    return True
                task = asyncio.create_task(run(*job))
                running.add(task)
                task.add_done_callback(running.discard)
                getter = asyncio.create_task(self._jobs.get())
                waiter = asyncio.create_task(dead.wait())
                done, _ = await asyncio.wait({getter, waiter}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    waiter.cancel()
                    job = getter.result()
                    continue
                getter.cancel()
                with suppress(asyncio.CancelledError):
                    await getter
                if getter.done() and not getter.cancelled():
                    self._jobs.put_nowait(getter.result())  # not lost: served by the next session
                return False  # the server died: leave this session; the next job reconnects
        finally:
            for task in list(running):
                task.cancel()


def _wrap(
    conn: _Connection,
    spec: Any,
    name: str,
    price: Decimal | float | str,
    budget_key: str | None,
    timeout: float,
) -> Tool:
    remote = spec.name
    schema = dict(spec.input_schema or {"type": "object", "properties": {}})

    async def call(**kwargs: Any) -> str:
        arguments = {k: v for k, v in kwargs.items() if v is not None}
        result = await conn.call(remote, arguments)
        text = _text(result)
        if getattr(result, "is_error", False):
            raise ToolCallError(f"{name} failed: {text or 'the server reported an error'}")
        return text

    return Tool.from_schema(
        name, spec.description or name, schema, call, price=price, budget_key=budget_key, timeout=timeout
    )
