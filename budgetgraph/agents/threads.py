"""One owner per thread at a time: a run, resume, grant, approval or cap change on a checkpointed thread takes
the thread's lease before it reads the thread's checkpoint and holds it until its last write, so two requests
on one thread never both continue from the same checkpoint.

A lease, not a compare-and-set on the checkpoint version: LangGraph writes the checkpoints itself and no
checkpointer offers a conditional write, so a version check could only fail *after* a step ran (its model and
tool calls spent); a lease refuses or queues the second request before anything is read or spent. Where the
lease lives follows the checkpointer: this process for an in-memory one, a table in the same SQLite file for
an SQLite one (so every process that opens the file shares it), and for any other checkpointer the lease
store the app passes (``ThreadPolicy(leases=RedisLeases(url))``).

The holder renews its lease while it works; every node of the run checks it first (:meth:`ThreadLease.check`),
so a holder that stalled past its lease and lost the thread stops before its next step instead of writing a
stale branch.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..budget.leases import Holder, LeaseStore, LocalLeases, SQLiteLeases
from ..errors import ConfigError, ThreadBusy

__all__ = ["OnBusy", "ThreadLease", "ThreadPolicy", "leases_for", "owning"]

OnBusy = Literal["reject", "enqueue"]
"""What a request on a busy thread does: ``reject`` raises :class:`~budgetgraph.errors.ThreadBusy` at once
(the app shows "this conversation is busy"); ``enqueue`` waits its turn, up to ``ThreadPolicy.wait_s``."""

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadPolicy:
    """How an agent shares its threads: ``on_busy`` (the default of every call, which may override it),
    ``wait_s`` (how long ``enqueue`` waits), ``lease_s`` (how long a holder that stops renewing keeps the
    thread: a crashed process's thread is free after it) and ``leases`` (where leases live; None: found from
    the checkpointer)."""

    on_busy: OnBusy = "reject"
    wait_s: float = 30.0
    lease_s: float = 20.0
    leases: LeaseStore | None = None

    def __post_init__(self) -> None:
        if self.on_busy not in ("reject", "enqueue"):
            raise ConfigError(f"on_busy must be 'reject' or 'enqueue', not {self.on_busy!r}")
        for name in ("wait_s", "lease_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 86400:
                raise ConfigError(f"ThreadPolicy.{name} must be a number of seconds above 0, not {value!r}")
        if self.leases is not None and not isinstance(self.leases, LeaseStore):
            raise ConfigError(
                "ThreadPolicy.leases must be a lease store: LocalLeases(), SQLiteLeases(path) or RedisLeases(url)"
            )

    @staticmethod
    def of(value: ThreadPolicy | None) -> ThreadPolicy:
        """An agent's ``threads=`` argument as a policy (None: the default one)."""
        if value is None:
            return ThreadPolicy()
        if not isinstance(value, ThreadPolicy):
            raise ConfigError(f"threads must be a ThreadPolicy(on_busy=..., wait_s=...), not {value!r}")
        return value


class ThreadLease:
    """One request's hold on one thread: taken by :meth:`acquire`, renewed in the background, checked before
    each step of the run (:meth:`check`), given back by :meth:`release`."""

    def __init__(self, store: LeaseStore, name: str, thread_id: str, ttl_s: float) -> None:
        self.store = store
        self.name = name
        self.thread_id = thread_id
        self.ttl_s = ttl_s
        self.owner = uuid.uuid4().hex
        self._valid_until = 0.0
        self._lost: Holder | None = None
        self._renewer: asyncio.Task[None] | None = None

    async def acquire(self, on_busy: OnBusy, wait_s: float) -> None:
        """Take the thread, or raise :class:`ThreadBusy` (at once for ``reject``; after ``wait_s`` for
        ``enqueue``)."""
        started = time.monotonic()
        pause = 0.02
        while True:
            began = time.monotonic()
            holder = await asyncio.to_thread(self.store.take, self.name, self.owner, self.ttl_s)
            if holder is None:
                self._valid_until = began + self.ttl_s
                self._renewer = asyncio.create_task(self._renew())
                return
            waited = time.monotonic() - started
            if on_busy == "reject" or waited >= wait_s:
                raise ThreadBusy(
                    self.thread_id, holder.seconds_left, waited if on_busy == "enqueue" else None
                )
            await asyncio.sleep(min(pause * (0.5 + random.random()), max(wait_s - waited, 0.001)))
            pause = min(pause * 2, 0.5)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            if not await asyncio.to_thread(self._take):
                return

    def _take(self) -> bool:
        """Renew the lease now: False (and the lease marked lost) when another owner holds the thread."""
        began = time.monotonic()
        holder = self.store.take(self.name, self.owner, self.ttl_s)
        if holder is not None:
            self._lost = holder
            return False
        self._valid_until = began + self.ttl_s
        return True

    def check(self) -> None:
        """Before a step: raise :class:`ThreadBusy` when this request no longer owns its thread (it stalled
        past its lease and another request took the thread). A lease past its time (the renewer could not run)
        is renewed here first."""
        if self._lost is None and time.monotonic() >= self._valid_until - 0.001:
            self._take()
        if self._lost is not None:
            raise ThreadBusy(self.thread_id, self._lost.seconds_left, lost=True)

    async def release(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            self._renewer = None
        if self._lost is None:
            await asyncio.to_thread(self.store.drop, self.name, self.owner)


_FOUND: weakref.WeakKeyDictionary[Any, LeaseStore] = weakref.WeakKeyDictionary()
_PINNED: dict[int, tuple[Any, LeaseStore]] = {}
_WARNED: set[str] = set()


async def leases_for(checkpointer: Any) -> LeaseStore:
    """Where the threads of ``checkpointer`` are leased: its own SQLite file for an SQLite checkpointer, this
    process for any other (with a warning, once, for a checkpointer that other processes may share)."""
    try:
        found = _FOUND.get(checkpointer)
    except TypeError:
        found = _PINNED.get(id(checkpointer), (None, None))[1]
    if found is None:
        path = await _sqlite_file(checkpointer)
        if path is not None:
            setup = getattr(checkpointer, "setup", None)
            if callable(setup) and asyncio.iscoroutinefunction(setup):
                await setup()  # its tables and journal mode first: the leases share the file
            found = SQLiteLeases(path)
        else:
            found = LocalLeases()
            kind = type(checkpointer).__name__
            if kind not in ("InMemorySaver", "MemorySaver") and kind not in _WARNED:
                _WARNED.add(kind)
                _log.warning(
                    "budgetgraph: threads of the %s checkpointer are owned per process: two processes could "
                    "run one thread at once. Pass ThreadPolicy(leases=RedisLeases(url) or SQLiteLeases(path)) "
                    "to share thread ownership across processes.",
                    kind,
                )
        try:
            found = _FOUND.setdefault(checkpointer, found)  # two first requests at once share one store
        except TypeError:  # a checkpointer that cannot be weakly referenced: kept for the process
            found = _PINNED.setdefault(id(checkpointer), (checkpointer, found))[1]
    return found


async def _sqlite_file(checkpointer: Any) -> Path | None:
    """The database file of LangGraph's SQLite checkpointers (None: another kind, or an in-memory database)."""
    conn: Any = getattr(checkpointer, "conn", None)
    module = type(conn).__module__.split(".")[0]
    try:
        if module == "aiosqlite":
            async with conn.execute("PRAGMA database_list") as cursor:
                rows = await cursor.fetchall()
        elif module == "sqlite3":
            rows = conn.execute("PRAGMA database_list").fetchall()
        else:
            return None
    except Exception:  # not a connection we can ask: leased in this process
        return None
    main = next((r[2] for r in rows if r[1] == "main"), "")
    return Path(main) if main else None


@asynccontextmanager
async def owning(
    checkpointer: Any, thread_id: str, policy: ThreadPolicy, on_busy: OnBusy | None = None
) -> AsyncIterator[ThreadLease]:
    """Hold ``thread_id`` of ``checkpointer`` for the block (see :class:`ThreadPolicy`)."""
    chosen = policy.on_busy if on_busy is None else on_busy
    if chosen not in ("reject", "enqueue"):
        raise ConfigError(f"on_busy must be 'reject' or 'enqueue', not {chosen!r}")
    store = policy.leases if policy.leases is not None else await leases_for(checkpointer)
    lease = ThreadLease(store, f"thread:{thread_id}", thread_id, policy.lease_s)
    await lease.acquire(chosen, policy.wait_s)
    try:
        yield lease
    finally:
        await lease.release()
