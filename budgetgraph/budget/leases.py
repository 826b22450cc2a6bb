"""Leases: which owner holds a name (a conversation thread) for a while, in one process or across processes.

A lease is taken in one atomic step, renewed by its holder before it lapses, and given back when its work ends;
a holder that dies stops renewing, so its lease lapses after ``ttl_s`` and the name is free again. Each store
makes :meth:`LeaseStore.take` one atomic step: a ``threading.Lock`` in a process, a ``BEGIN IMMEDIATE``
transaction in SQLite, a Lua script in Redis.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._extras import require
from .._redact import redact, redact_url
from ..errors import BudgetStoreError, ConfigError

__all__ = ["Holder", "LeaseStore", "LocalLeases", "RedisLeases", "SQLiteLeases"]


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a name now, and for how many more seconds unless it renews."""

    owner: str
    seconds_left: float


def _check(name: str, owner: str, ttl_s: float) -> None:
    if not name or not owner:
        raise ConfigError("a lease needs a name and an owner")
    if not (isinstance(ttl_s, int | float) and math.isfinite(ttl_s) and ttl_s > 0):
        raise ConfigError(f"a lease lasts a positive number of seconds, not {ttl_s!r}")


class LeaseStore(ABC):
    """Where leases live."""

    @abstractmethod
    def take(self, name: str, owner: str, ttl_s: float) -> Holder | None:
        """Take ``name`` for ``owner`` for ``ttl_s`` seconds, or renew it when ``owner`` holds it: None when
        ``owner`` holds it now, else who does."""

    @abstractmethod
    def drop(self, name: str, owner: str) -> None:
        """Give ``name`` back when ``owner`` holds it (a lease another owner took since is left alone)."""

    def describe(self) -> str:
        """Where the leases live, for errors and logs (never a secret)."""
        return type(self).__name__


class LocalLeases(LeaseStore):
    """Leases of this process only (an in-memory checkpointer's threads live in one process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, tuple[str, float]] = {}

    def take(self, name: str, owner: str, ttl_s: float) -> Holder | None:
        _check(name, owner, ttl_s)
        now = time.monotonic()
        with self._lock:
            held = self._held.get(name)
            if held is not None and held[0] != owner and held[1] > now:
                return Holder(held[0], held[1] - now)
            self._held[name] = (owner, now + ttl_s)
            return None

    def drop(self, name: str, owner: str) -> None:
        with self._lock:
            held = self._held.get(name)
            if held is not None and held[0] == owner:
                del self._held[name]

    def describe(self) -> str:
        return "this process"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS budgetgraph_leases (
    name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL
) WITHOUT ROWID
"""


class SQLiteLeases(LeaseStore):
    """Leases in an SQLite file (a table of their own), shared by every process on the machine; each take is
    one ``BEGIN IMMEDIATE`` transaction on the wall clock the processes share."""

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")  # as LangGraph's SQLite checkpointers set their file
            self._db.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise BudgetStoreError(
                f"thread leases {self.path}: cannot open it ({exc}); check the path is a writable SQLite file"
            ) from exc

    def take(self, name: str, owner: str, ttl_s: float) -> Holder | None:
        _check(name, owner, ttl_s)
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    now = time.time()
                    row = self._db.execute(
                        "SELECT owner, expires FROM budgetgraph_leases WHERE name = ?", (name,)
                    ).fetchone()
                    held = None
                    if row is not None and row[0] != owner and row[1] > now:
                        held = Holder(str(row[0]), float(row[1]) - now)
                    else:
                        self._db.execute(
                            "INSERT OR REPLACE INTO budgetgraph_leases VALUES (?, ?, ?)",
                            (name, owner, now + ttl_s),
                        )
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                return held
            except sqlite3.Error as exc:
                raise BudgetStoreError(
                    f"thread leases {self.path}: {exc}; nothing was run (another process may hold the write "
                    "lock longer than the timeout)"
                ) from exc

    def drop(self, name: str, owner: str) -> None:
        with self._lock:
            try:
                self._db.execute("DELETE FROM budgetgraph_leases WHERE name = ? AND owner = ?", (name, owner))
            except sqlite3.Error as exc:
                raise BudgetStoreError(f"thread leases {self.path}: {exc}") from exc

    def describe(self) -> str:
        return f"the SQLite file {self.path}"


_TAKE = """
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then return {held, redis.call('PTTL', KEYS[1])} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""
_DROP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


class RedisLeases(LeaseStore):
    """Leases in Redis (the server's clock), shared by processes on many machines."""

    def __init__(
        self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = "budgetgraph", client: Any = None
    ) -> None:
        redis = require("redis", "redis")
        self.url = redact_url(url)
        self.prefix = prefix
        self._redis = client if client is not None else redis.Redis.from_url(url, socket_timeout=10)
        self._take = self._redis.register_script(_TAKE)
        self._drop = self._redis.register_script(_DROP)
        self._error = redis.RedisError

    def _key(self, name: str) -> str:
        return f"{self.prefix}:lease:{{{name}}}"

    def take(self, name: str, owner: str, ttl_s: float) -> Holder | None:
        _check(name, owner, ttl_s)
        try:
            out = self._take(keys=[self._key(name)], args=[owner, max(int(ttl_s * 1000), 1)])
        except self._error as exc:
            raise BudgetStoreError(
                f"thread leases {self.url}: {redact(str(exc))}; nothing was run (is the Redis server up?)"
            ) from None
        if not out:
            return None
        held, ms = out
        return Holder(held.decode() if isinstance(held, bytes) else str(held), max(int(ms), 0) / 1000)

    def drop(self, name: str, owner: str) -> None:
        try:
            self._drop(keys=[self._key(name)], args=[owner])
        except self._error as exc:
            raise BudgetStoreError(f"thread leases {self.url}: {redact(str(exc))}") from None

    def describe(self) -> str:
        return f"Redis at {self.url}"
