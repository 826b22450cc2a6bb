"""An account shared by every run of a context: an evaluation's sweep-wide budget ("this sweep may spend
$20"), given once and drawn on by each episode, in this process or on a Ray worker.

:class:`SharedAccount` is where the account lives (a Redis URL or an SQLite file), its key, caps and window:
plain, picklable data that each process opens for itself. :data:`default_account` is the account a run spends
from when it is given none.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._redact import redact_url
from ..errors import ConfigError
from .limits import Budget
from .store import WINDOWS, Account, BudgetStore, Window

__all__ = ["SharedAccount", "default_account", "spending_from"]

default_account: ContextVar[Account | None] = ContextVar("budgetgraph_default_account", default=None)
"""The account a run spends from when ``arun`` is given none (set by :func:`spending_from`)."""


@dataclass(frozen=True)
class SharedAccount:
    """``store``: ``redis://host:port/db`` or an SQLite file path; ``key``: the account (a user, a tenant, a
    sweep); ``budget``: its caps (``"usd=20"``); ``window``: ``total`` unless the caps renew."""

    store: str
    key: str
    budget: str
    window: Window = "total"
    lease_s: float = 900.0
    prefix: str = "budgetgraph"

    def __post_init__(self) -> None:
        if not self.store:
            raise ConfigError("a shared account needs a store: a redis:// URL or an SQLite file path")
        if not self.key:
            raise ConfigError("a shared account needs a key (a user, a tenant or the sweep's name)")
        if self.window not in WINDOWS:
            raise ConfigError(f"unknown budget window {self.window!r}: use one of {', '.join(WINDOWS)}")
        limits = Budget.parse(self.budget).limits()
        if not limits:
            raise ConfigError(f"the shared account {self.key!r} needs caps, e.g. 'usd=20'")

    def __repr__(self) -> str:
        return (
            f"SharedAccount(store={redact_url(self.store)!r}, key={self.key!r}, budget={self.budget!r}, "
            f"window={self.window!r})"
        )

    def open_store(self) -> BudgetStore:
        if self.store.startswith(("redis://", "rediss://", "unix://")):
            from .redis_store import RedisBudgetStore

            return RedisBudgetStore(self.store, prefix=self.prefix)
        if "://" in self.store:
            raise ConfigError(f"store {redact_url(self.store)!r}: use a redis:// URL or an SQLite file path")
        from .sqlite_store import SQLiteBudgetStore

        return SQLiteBudgetStore(Path(self.store))

    def open(self) -> Account:
        """The account, on a new connection of this process."""
        return self.open_store().account(self.key, self.budget, window=self.window, lease_s=self.lease_s)

    def describe(self) -> dict[str, Any]:
        """For a results header: where (a password masked), the key, caps and window."""
        return {
            "store": redact_url(self.store),
            "key": self.key,
            "budget": self.budget,
            "window": self.window,
        }


@contextmanager
def spending_from(account: Account | None) -> Iterator[None]:
    """Runs started inside spend from ``account`` unless given another."""
    token = default_account.set(account)
    try:
        yield
    finally:
        default_account.reset(token)
