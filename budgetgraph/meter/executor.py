"""Where tool functions run: async ones on the event loop, sync ones on the meter's own daemon threads, and
tools declared ``isolation="process"`` in a child process that is killed at their timeout.

A thread cannot be killed: a sync call past its timeout is abandoned (its thread keeps running, as a daemon,
so it blocks neither ``run()``, nor process exit, nor other tools), and its slot is freed at once. A tool that
must really be stopped at its timeout should run in a process.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ToolCallError

__all__ = ["SyncRunner", "call_in_process"]


class SyncRunner:
    """Runs sync functions on daemon threads, at most ``workers`` at a time; hung ones are abandoned."""

    def __init__(self, workers: int = 32, max_abandoned: int = 256) -> None:
        self.workers = workers
        self.max_abandoned = max_abandoned
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._abandoned = 0
        self._lock = threading.Lock()

    @property
    def abandoned(self) -> int:
        """Calls given up on whose threads are still running."""
        return self._abandoned

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:
            self._slots, self._loop = asyncio.Semaphore(self.workers), loop
        return self._slots

    async def run(self, fn: Callable[..., Any], kwargs: Mapping[str, Any], timeout: float | None) -> Any:
        """``fn(**kwargs)`` on a daemon thread; ``asyncio.TimeoutError`` after ``timeout`` seconds."""
        if self._abandoned >= self.max_abandoned:
            raise ToolCallError(
                f"{self._abandoned} earlier tool calls are still hung past their timeouts; no more sync tool "
                "calls run in this process (run such tools with isolation='process')"
            )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        state = {"abandoned": False, "delivered": False}

        def settle(ok: bool, value: Any) -> None:
            if future.done():
                return
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

        def work() -> None:
            try:
                value = fn(**kwargs)
            except BaseException as exc:  # delivered to the awaiting task
                outcome: tuple[bool, Any] = (False, exc)
            else:
                outcome = (True, value)
            with self._lock:
                if state["abandoned"]:
                    self._abandoned -= 1
                    return
                state["delivered"] = True
            try:
                loop.call_soon_threadsafe(settle, *outcome)
            except RuntimeError:  # the loop closed meanwhile
                pass

        async with self._semaphore():
            threading.Thread(target=work, name="budgetgraph-tool", daemon=True).start()
            try:
                return await asyncio.wait_for(asyncio.shield(future), timeout)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                with self._lock:
                    if not state["delivered"]:
                        state["abandoned"] = True
                        self._abandoned += 1
                raise


def _child(conn: Any, fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> None:
    try:
        conn.send((True, fn(**kwargs)))
    except BaseException as exc:
        conn.send((False, f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


async def call_in_process(fn: Callable[..., Any], kwargs: Mapping[str, Any], timeout: float | None) -> Any:
    """``fn(**kwargs)`` in a spawned child process, killed at ``timeout``; ``fn`` and its arguments and result
    must pickle (a module-level function)."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, dict(kwargs)), daemon=True)
    proc.start()
    child.close()
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    loop.add_reader(parent.fileno(), lambda: None if ready.done() else ready.set_result(None))
    try:
        await asyncio.wait_for(ready, timeout)
        try:
            ok, value = parent.recv()
        except EOFError:
            raise ToolCallError(f"the tool's process died (exit code {proc.exitcode})") from None
    except (asyncio.TimeoutError, asyncio.CancelledError):
        proc.kill()
        raise
    finally:
        loop.remove_reader(parent.fileno())
        parent.close()
        if proc.is_alive():
            proc.kill()
        proc.join(timeout=5)
    if not ok:
        raise ToolCallError(f"the tool raised {value}")
    return value
