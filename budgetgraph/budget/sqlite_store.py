"""The embedded budget store: one SQLite file (WAL) shared by every process on a machine.

Each reserve, commit and release is one ``BEGIN IMMEDIATE`` transaction, so processes take turns on the
write lock and a check-and-reserve can never interleave with another.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from ..errors import BudgetStoreError, ConfigError
from .leases import SQLiteLeases
from .store import BudgetStore

__all__ = ["SQLiteBudgetStore"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spent (
    key TEXT NOT NULL, bucket TEXT NOT NULL, resource TEXT NOT NULL, amount INTEGER NOT NULL,
    expires REAL, PRIMARY KEY (key, bucket, resource)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS held (
    id TEXT NOT NULL, key TEXT NOT NULL, bucket TEXT NOT NULL, resource TEXT NOT NULL,
    amount INTEGER NOT NULL, expires REAL NOT NULL, PRIMARY KEY (id, resource)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS held_by_key ON held (key, bucket, expires);
CREATE TABLE IF NOT EXISTS caps (
    key TEXT NOT NULL, resource TEXT NOT NULL, amount INTEGER NOT NULL, PRIMARY KEY (key, resource)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lapsed (
    id TEXT NOT NULL, key TEXT NOT NULL, bucket TEXT NOT NULL, resource TEXT NOT NULL,
    amount INTEGER NOT NULL, expires REAL NOT NULL, PRIMARY KEY (id, resource)
) WITHOUT ROWID;
"""
_KEEP_LAPSED = (
    86400.0 * 3
)  # how long a lapsed reservation waits for a late commit (then only its spend stays)
_MARK = ""  # a grant that holds nothing still gets a row, so a late commit can be told from an early one


class SQLiteBudgetStore(BudgetStore):
    """Budget accounts in one SQLite file; ``timeout`` is how long to wait for another process's write."""

    def __init__(
        self, path: str | Path, *, timeout: float = 30.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a committed spend survives a power cut
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise BudgetStoreError(
                f"budget store {self.path}: cannot open it ({exc}); check the path is a writable SQLite file"
            ) from exc

    def _tx(self, body: Callable[[sqlite3.Connection], T], *, write: bool = True) -> T:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    result = body(self._db)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                return result
            except sqlite3.Error as exc:
                raise BudgetStoreError(
                    f"budget store {self.path}: {exc}; the call was not made (another process may hold the "
                    "write lock longer than the timeout, or the file is not a budget store)"
                ) from exc

    def _purge(self, db: sqlite3.Connection, key: str, bucket: str, ttl_s: float | None) -> None:
        """Reservations whose lease expired lapse: their call may have run, so they become spend (kept in
        ``lapsed`` so that a late commit replaces them with the truth, and a late release takes them back)."""
        now = self._clock()
        rows = db.execute(
            "SELECT id, resource, amount, expires FROM held WHERE key = ? AND bucket = ? AND expires <= ?",
            (key, bucket, now),
        ).fetchall()
        if not rows:
            return
        self._add_spent(db, key, bucket, [(r, a) for _, r, a, _ in rows if r != _MARK], ttl_s)
        db.executemany(
            "INSERT OR REPLACE INTO lapsed VALUES (?, ?, ?, ?, ?, ?)",
            [(rid, key, bucket, r, a, exp + _KEEP_LAPSED) for rid, r, a, exp in rows],
        )
        db.execute("DELETE FROM held WHERE key = ? AND bucket = ? AND expires <= ?", (key, bucket, now))

    def _add_spent(
        self, db: sqlite3.Connection, key: str, bucket: str, rows: list[tuple[str, int]], ttl_s: float | None
    ) -> None:
        expires = None if ttl_s is None else self._clock() + ttl_s
        db.executemany(
            "INSERT INTO spent VALUES (?, ?, ?, ?, ?) ON CONFLICT (key, bucket, resource) "
            "DO UPDATE SET amount = amount + excluded.amount, expires = COALESCE(excluded.expires, expires)",
            [(key, bucket, r, a, expires) for r, a in rows if a],
        )

    def _drop(self, db: sqlite3.Connection, key: str, bucket: str, rid: str) -> bool:
        """Settle reservation ``rid``: True when its lease was live. A lapsed one's spend is taken back (the
        caller records what the call really used, if it ran)."""
        now = self._clock()
        live = db.execute(
            "SELECT 1 FROM held WHERE id = ? AND resource = ? AND expires > ?", (rid, _MARK, now)
        ).fetchone()
        if db.execute("DELETE FROM held WHERE id = ?", (rid,)).rowcount == 0:  # lapsed and purged
            lapsed = db.execute(
                "SELECT resource, amount FROM lapsed WHERE id = ? AND resource != ?", (rid, _MARK)
            ).fetchall()
            db.executemany(
                "UPDATE spent SET amount = amount - ? WHERE key = ? AND bucket = ? AND resource = ?",
                [(a, key, bucket, r) for r, a in lapsed],
            )
            db.execute("DELETE FROM lapsed WHERE id = ?", (rid,))
        return live is not None

    def _sums(self, db: sqlite3.Connection, key: str, bucket: str) -> tuple[dict[str, int], dict[str, int]]:
        spent = dict(
            db.execute("SELECT resource, amount FROM spent WHERE key = ? AND bucket = ?", (key, bucket))
        )
        for resource, amount in db.execute(  # lapsed but not yet purged: spend all the same
            "SELECT resource, SUM(amount) FROM held WHERE key = ? AND bucket = ? AND resource != ? "
            "AND expires <= ? GROUP BY resource",
            (key, bucket, _MARK, self._clock()),
        ):
            spent[resource] = spent.get(resource, 0) + amount
        reserved = dict(
            db.execute(
                "SELECT resource, SUM(amount) FROM held WHERE key = ? AND bucket = ? AND resource != ? "
                "AND expires > ? GROUP BY resource",
                (key, bucket, _MARK, self._clock()),
            )
        )
        return spent, reserved

    def _reserve(
        self,
        key: str,
        bucket: str,
        rid: str,
        amounts: Mapping[str, int],
        limits: Mapping[str, int],
        lease_s: float,
        ttl_s: float | None,
        keep: Mapping[str, int] | None = None,
    ) -> tuple[str, int] | None:
        def body(db: sqlite3.Connection) -> tuple[str, int] | None:
            self._purge(db, key, bucket, ttl_s)
            spent, reserved = self._sums(db, key, bucket)
            caps = {**limits, **dict(db.execute("SELECT resource, amount FROM caps WHERE key = ?", (key,)))}
            for resource, amount in amounts.items():
                limit = caps.get(resource)
                if limit is not None and (keep or {}).get(resource):
                    limit = max(limit - (keep or {})[resource], 0)
                if limit is None or amount <= 0:
                    continue
                left = limit - spent.get(resource, 0) - reserved.get(resource, 0)
                if amount > left:
                    return resource, max(left, 0)
            expires = self._clock() + lease_s
            rows = [(rid, key, bucket, r, a, expires) for r, a in amounts.items() if a > 0]
            rows.append((rid, key, bucket, _MARK, 0, expires))
            db.executemany("INSERT INTO held VALUES (?, ?, ?, ?, ?, ?)", rows)
            return None

        return self._tx(body)

    def _commit(
        self, key: str, bucket: str, rid: str, actual: Mapping[str, int], ttl_s: float | None
    ) -> bool:
        def body(db: sqlite3.Connection) -> bool:
            live = self._drop(db, key, bucket, rid)
            self._add_spent(db, key, bucket, list(actual.items()), ttl_s)
            return live

        return self._tx(body)

    def _release(self, key: str, bucket: str, rid: str) -> None:
        self._tx(lambda db: self._drop(db, key, bucket, rid))

    def _totals(self, key: str, bucket: str) -> tuple[dict[str, int], dict[str, int]]:
        return self._tx(lambda db: self._sums(db, key, bucket), write=False)

    def _stored_caps(self, key: str) -> dict[str, int]:
        return self._tx(
            lambda db: dict(db.execute("SELECT resource, amount FROM caps WHERE key = ?", (key,))),
            write=False,
        )

    def _store_caps(self, key: str, caps: Mapping[str, int | None]) -> None:
        def body(db: sqlite3.Connection) -> None:
            for resource, amount in caps.items():
                if amount is None:
                    db.execute("DELETE FROM caps WHERE key = ? AND resource = ?", (key, resource))
                else:
                    db.execute("INSERT OR REPLACE INTO caps VALUES (?, ?, ?)", (key, resource, amount))

        self._tx(body)

    def prune(self) -> int:
        """Delete the figures of windows past their keep-until time; returns how many rows went."""
        now = self._clock()
        return self._tx(
            lambda db: (
                db.execute("DELETE FROM spent WHERE expires IS NOT NULL AND expires <= ?", (now,)).rowcount
                + db.execute("DELETE FROM lapsed WHERE expires <= ?", (now,)).rowcount
                + db.execute("DELETE FROM held WHERE expires <= ?", (now - _KEEP_LAPSED,)).rowcount
            )
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), timezone.utc)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "path": str(self.path.resolve())}

    @classmethod
    def reopen(cls, described: Mapping[str, Any]) -> SQLiteBudgetStore | None:
        if not described.get("path"):
            return None
        path = Path(described["path"])
        if not path.is_file():  # a new, empty file would be spent from as if nothing had been spent
            raise ConfigError(
                f"the run's account lives in the SQLite budget store {path}, which is gone: restore the file, "
                "or pass account= (a store that holds the account's spend) to resume"
            )
        return cls(path)

    def leases(self) -> SQLiteLeases:
        """Thread leases in this store's file (``ThreadPolicy(leases=store.leases())``)."""
        return SQLiteLeases(self.path)

    def __repr__(self) -> str:
        return f"SQLiteBudgetStore({str(self.path)!r})"
