"""Budget stores: caps that outlive a run, shared by processes and machines, scoped by a key the app chooses
(user, tenant, API key, conversation) over a window (minute, hour, day, month or total).

A run's ledger reserves through its :class:`Account` exactly as it reserves through a parent ledger: the
store checks and takes the reservation atomically, so any number of processes sharing a key never overshoot
it, and a reservation that is never committed (its process died) lapses after its lease: it becomes spend,
since its call may have run.
"""

from __future__ import annotations

import math
import uuid
import weakref
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import ROUND_CEILING, Decimal
from typing import Any, Literal

from ..errors import AccountExceeded, ConfigError
from .limits import RESOURCES, TOOL_PREFIX, Amount, Budget, check_name

__all__ = [
    "WINDOWS",
    "Account",
    "AccountUsage",
    "BudgetStore",
    "Grant",
    "Window",
    "window_bucket",
]

Window = Literal["minute", "hour", "day", "month", "total"]
WINDOWS: tuple[Window, ...] = ("minute", "hour", "day", "month", "total")
USD_UNIT = Decimal("0.000000001")
"""Stores count dollars in whole nano-dollars, rounded up: a store's figure is never below the truth."""
MAX_UNITS = 2**53 - 1
"""The largest figure a store keeps exactly (Redis's scripts count in doubles): caps and amounts above it
are refused."""
_KEYS = frozenset(RESOURCES) | {"cached_input_tokens"}


def check_resource(key: object) -> str:
    """A store's resource key: a global resource, or ``tool:NAME`` with NAME in the one name grammar."""
    if isinstance(key, str) and (key in _KEYS or key.startswith(TOOL_PREFIX)):
        if key.startswith(TOOL_PREFIX):
            check_name(key[len(TOOL_PREFIX) :], "budget store: tool name")
        return key
    raise ConfigError(f"budget store: {key!r} is not a resource key (a global resource or tool:NAME)")


def window_bucket(window: Window, now: datetime | None = None) -> tuple[str, float | None]:
    """The current fixed UTC window of ``window`` as a label, and seconds until it ends (None: never)."""
    now = now or datetime.now(timezone.utc)
    if window == "total":
        return "total", None
    if window == "minute":
        start = now.replace(second=0, microsecond=0)
        label, span = start.strftime("%Y-%m-%dT%H:%M"), 60.0
    elif window == "hour":
        start = now.replace(minute=0, second=0, microsecond=0)
        label, span = start.strftime("%Y-%m-%dT%H"), 3600.0
    elif window == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        label, span = start.strftime("%Y-%m-%d"), 86400.0
    elif window == "month":
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        nxt = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else start.replace(month=start.month + 1)
        )
        return start.strftime("%Y-%m"), (nxt - now).total_seconds()
    else:
        raise ConfigError(f"unknown budget window {window!r}: use one of {', '.join(WINDOWS)}")
    return label, span - (now - start).total_seconds()


def to_units(key: str, amount: Amount) -> int:
    """A ledger amount in the store's whole units (nano-dollars for ``usd``, rounded up); a negative,
    NaN, infinite or too large amount raises ``ValueError`` (a caller's bug, never a loosened cap)."""
    if isinstance(amount, bool) or not isinstance(amount, int | float | Decimal):
        raise ConfigError(f"budget store: {key} must be a number, got {amount!r}")
    value = Decimal(str(amount))
    if not value.is_finite() or value < 0:
        raise ConfigError(f"budget store: {key} must be a finite number >= 0, got {amount!r}")
    if key == "usd":
        units = int(value.quantize(USD_UNIT, rounding=ROUND_CEILING) / USD_UNIT)
    else:
        units = int(math.ceil(value))
    if units > MAX_UNITS:
        raise ConfigError(
            f"budget store: {key} = {amount!r} is above what a store keeps exactly ({MAX_UNITS} units)"
        )
    return units


def from_units(key: str, units: int) -> Amount:
    return Decimal(units) * USD_UNIT if key == "usd" else int(units)


@dataclass(frozen=True, slots=True)
class Grant:
    """A reservation held in a store: its id and the window bucket it was taken from."""

    id: str
    bucket: str


@dataclass(frozen=True, slots=True)
class AccountUsage:
    """An account's figures in its current window (dollars as Decimal, counts as int)."""

    key: str
    window: Window
    bucket: str
    limits: Mapping[str, Amount]
    spent: Mapping[str, Amount]
    reserved: Mapping[str, Amount]

    def remaining(self, resource: str) -> Amount | None:
        limit = self.limits.get(resource)
        if limit is None:
            return None
        zero: Any = Decimal(0) if resource == "usd" else 0
        left: Any = (
            limit - self.spent.get(resource, zero) - self.reserved.get(resource, zero)
        )  # one type a key
        return max(left, zero)  # type: ignore[no-any-return]

    def to_dict(self) -> dict[str, Any]:
        def plain(values: Mapping[str, Amount]) -> dict[str, Any]:
            return {k: str(v) if isinstance(v, Decimal) else v for k, v in values.items()}

        return {
            "key": self.key,
            "window": self.window,
            "bucket": self.bucket,
            "limits": plain(self.limits),
            "spent": plain(self.spent),
            "reserved": plain(self.reserved),
            "remaining": plain({k: r for k in self.limits if (r := self.remaining(k)) is not None}),
        }


class BudgetStore(ABC):
    """Where accounts' spend lives. Implementations make each operation one atomic step. A reservation whose
    lease expires before it is committed or released *lapses*: its call may have run, so it becomes spend."""

    @abstractmethod
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
        """Take ``amounts`` if every capped one fits (the caps: ``limits`` under the key's stored caps, read in
        the same atomic step, each lowered by its ``keep``); else return (resource, units remaining)."""

    @abstractmethod
    def _commit(
        self, key: str, bucket: str, rid: str, actual: Mapping[str, int], ttl_s: float | None
    ) -> bool:
        """Release the reservation and record ``actual``; False when the lease had already expired (the
        lapsed reservation was counted as spent then: it is replaced by ``actual`` now)."""

    @abstractmethod
    def _release(self, key: str, bucket: str, rid: str) -> None:
        """Drop the reservation (its call did not run); a lapsed one's spend is taken back."""

    @abstractmethod
    def _totals(self, key: str, bucket: str) -> tuple[dict[str, int], dict[str, int]]:
        """Spent and live reserved units of one key's bucket (expired leases dropped first)."""

    def _stored_caps(self, key: str) -> dict[str, int]:
        """The caps an operator set on ``key`` (units), which override those its accounts were built with."""
        return {}

    def _store_caps(self, key: str, caps: Mapping[str, int | None]) -> None:
        """Set (a number) or drop (None) ``key``'s stored caps, in one atomic step."""
        raise ConfigError(f"{type(self).__name__} does not keep caps: it cannot change them while runs go on")

    def set_caps(self, key: str, caps: str | Mapping[str, Amount | None]) -> dict[str, Amount]:
        """Change ``key``'s caps for every process and run that spends from it, effective at each one's next
        reservation: ``"usd=20"`` or ``{"usd": "20", "search": None}`` (None drops an operator's cap, back to
        the one the account was built with). A cap below what is spent and reserved refuses new reservations;
        those already held still commit (nothing is lost). Returns the caps the store now holds for ``key``."""
        if not key:
            raise ConfigError("set_caps needs the account's key (a user id, tenant or API key)")
        given = dict(Budget.parse(caps).limits()) if isinstance(caps, str) else dict(caps)
        keep = {k: v for k, v in given.items() if v is not None}
        limits = Budget.from_limits(keep).limits() if keep else {}
        if "seconds" in limits:
            raise ConfigError(
                "a budget store caps spend, not wall time: 'seconds' cannot be an account's cap"
            )
        units: dict[str, int | None] = {check_resource(k): to_units(k, v) for k, v in limits.items()}
        units.update({check_resource(k): None for k, v in given.items() if v is None})
        self._store_caps(key, units)
        return self.caps(key)

    def caps(self, key: str) -> dict[str, Amount]:
        """The caps an operator set on ``key`` with :meth:`set_caps` (empty: those of its accounts apply)."""
        return {k: from_units(k, v) for k, v in self._stored_caps(key).items()}

    def close(self) -> None:  # noqa: B027 - a store without connections has nothing to close
        """Release connections (the store's data stays)."""

    def now(self) -> datetime:
        """The store's clock, which picks every account's window: one clock for all the processes and hosts
        that share the store, whatever their own clocks say (Redis: the server's ``TIME``)."""
        return datetime.now(timezone.utc)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _KINDS[cls.__name__] = cls

    @classmethod
    def reopen(cls, described: Mapping[str, Any]) -> BudgetStore | None:
        """A new connection to the store :meth:`describe` described (None: it cannot be reopened from the
        description alone, e.g. its credentials are not in it)."""
        return None

    def describe(self) -> dict[str, Any]:
        """Where this store lives, for a checkpoint (never a secret): what :func:`open_store` reopens."""
        return {"kind": type(self).__name__, "instance": self._instance()}

    def _instance(self) -> str:
        token = getattr(self, "_token", None)
        if token is None:
            token = uuid.uuid4().hex
            self._token = token
            _LIVE[token] = self
        return str(token)

    def account(
        self,
        key: str,
        budget: Budget | str | Mapping[str, Amount],
        *,
        window: Window = "total",
        lease_s: float = 900.0,
    ) -> Account:
        """An account of this store: ``budget`` caps ``key``'s spend in each ``window``."""
        return Account(self, key, budget, window=window, lease_s=lease_s)

    def usage(
        self, key: str, *, window: Window = "total", limits: Mapping[str, Amount] | None = None
    ) -> AccountUsage:
        """What ``key`` has spent and holds in the current ``window``."""
        bucket, _ = window_bucket(window, self.now() if window != "total" else None)
        spent, reserved = self._totals(key, bucket)
        return AccountUsage(
            key,
            window,
            bucket,
            dict(limits or {}),
            {k: from_units(k, v) for k, v in spent.items()},
            {k: from_units(k, v) for k, v in reserved.items() if v},
        )


@dataclass(frozen=True)
class Account:
    """One key of a budget store with its caps and window, as a run's ledger sees it."""

    store: BudgetStore
    key: str
    budget: Budget | str | Mapping[str, Amount]
    window: Window = "total"
    lease_s: float = 900.0
    limits: Mapping[str, Amount] = field(init=False)

    def __post_init__(self) -> None:
        if not self.key:
            raise ConfigError("an account needs a non-empty key (a user id, tenant or API key)")
        if self.window not in WINDOWS:
            raise ConfigError(f"unknown budget window {self.window!r}: use one of {', '.join(WINDOWS)}")
        if not (self.lease_s > 0 and math.isfinite(self.lease_s)):
            raise ConfigError(f"lease_s must be a positive number of seconds, not {self.lease_s!r}")
        if isinstance(self.budget, Budget):
            budget = self.budget
        elif isinstance(self.budget, str):
            budget = Budget.parse(self.budget)
        else:
            budget = Budget.from_limits(dict(self.budget))
        limits = budget.limits()
        for resource, cap in limits.items():
            if resource == "seconds":
                continue
            try:
                to_units(resource, cap)
            except ConfigError:
                raise ConfigError(
                    f"the account {self.key!r}: the {resource} cap {cap} is above what a store keeps exactly; "
                    "leave the cap out for no cap"
                ) from None
        if "seconds" in limits:
            raise ConfigError(
                "a budget store caps spend, not wall time: drop 'seconds' from the account's budget and put "
                "it on the run's own budget"
            )
        if not limits:
            raise ConfigError(f"the account {self.key!r} has no caps: give it a budget such as 'usd=5'")
        object.__setattr__(self, "limits", limits)

    def caps(self, resource: str) -> bool:
        """Whether the account was built to cap ``resource`` (no store round trip; an operator's caps on
        other resources bind at each reservation all the same)."""
        return resource in self.limits

    def current_limits(self) -> dict[str, Amount]:
        """The caps in force: those the account was built with, under any an operator set in the store."""
        return {**self.limits, **self.store.caps(self.key)}

    def try_reserve(
        self, amounts: Mapping[str, Amount], *, keep: Mapping[str, Amount] | None = None
    ) -> Grant | AccountExceeded:
        """Take ``amounts`` from the store atomically, or say which cap refused it. ``keep`` is room this
        reservation must leave in the account (a run's final-answer reserve): it lowers the caps it checks."""
        bucket, ttl = window_bucket(self.window, self._now())
        units = {check_resource(k): to_units(k, v) for k, v in amounts.items() if k != "seconds" and v}
        limits = {k: to_units(k, v) for k, v in self.limits.items()}
        held = {check_resource(k): to_units(k, v) for k, v in (keep or {}).items() if units.get(k) and v}
        rid = uuid.uuid4().hex
        refused = self.store._reserve(self.key, bucket, rid, units, limits, self.lease_s, _ttl(ttl), held)
        if refused is not None:
            resource, left = refused
            cap = self.current_limits().get(resource, 0)
            return AccountExceeded(
                resource,
                _show(resource, amounts.get(resource, 0)),
                _show(resource, from_units(resource, left)),
                _show(resource, cap),
                account=self.key,
                window=f"{self.window} {bucket}" if self.window != "total" else "total",
            )
        return Grant(rid, bucket)

    def commit(self, grant: Grant, actual: Mapping[str, Amount]) -> bool:
        """Record what the call used; False when its lease had expired (the spend is recorded anyway)."""
        units = {check_resource(k): to_units(k, v) for k, v in actual.items() if k != "seconds" and v}
        _, ttl = window_bucket(self.window, self._now())
        return self.store._commit(self.key, grant.bucket, grant.id, units, _ttl(ttl))

    def release(self, grant: Grant) -> None:
        self.store._release(self.key, grant.bucket, grant.id)

    def usage(self) -> AccountUsage:
        return self.store.usage(self.key, window=self.window, limits=self.current_limits())

    def _now(self) -> datetime | None:
        return None if self.window == "total" else self.store.now()

    def describe(self) -> dict[str, Any]:
        """The account as plain data for a run's checkpoint: its store (no secrets), key, window, lease and
        caps; :meth:`from_description` rebuilds it on resume."""
        return {
            "store": self.store.describe(),
            "key": self.key,
            "window": self.window,
            "lease_s": self.lease_s,
            "limits": {k: str(v) if isinstance(v, Decimal) else v for k, v in self.limits.items()},
        }

    @classmethod
    def from_description(cls, data: Mapping[str, Any]) -> Account:
        """The account a checkpoint names, on the same store: the live store object when this process still
        has it, else the store reopened from where it lives (a :class:`ConfigError` when it cannot be)."""
        store = open_store(dict(data.get("store") or {}))
        return cls(
            store,
            str(data["key"]),
            dict(data.get("limits") or {}),
            window=data.get("window", "total"),
            lease_s=float(data.get("lease_s", 900.0)),
        )

    def available(self, resource: str) -> Amount | None:
        """What one more reservation of ``resource`` could take now; None if the account does not cap it."""
        return self.usage().remaining(resource)


_LIVE: weakref.WeakValueDictionary[str, BudgetStore] = weakref.WeakValueDictionary()
_KINDS: dict[str, type[BudgetStore]] = {}
"""Every store class by name (each registers itself when defined), to reopen one a checkpoint describes."""


def open_store(described: Mapping[str, Any]) -> BudgetStore:
    """The store a :meth:`BudgetStore.describe` names: this process's live object, or a new connection."""
    live = _LIVE.get(str(described.get("instance", "")))
    if live is not None:
        return live
    kind = described.get("kind")
    store = _KINDS[kind].reopen(described) if kind in _KINDS else None
    if store is not None:
        return store
    where = described.get("url") or described.get("path") or kind
    raise ConfigError(
        f"the run was started with an account of the budget store {where}, which this process cannot reopen "
        "by itself (its credentials are never written to a checkpoint): pass account= to aresume"
    )


def _ttl(seconds_left: float | None) -> float | None:
    # a window's figures are kept one more window after it ends (for reports), then the store may drop them
    return None if seconds_left is None else seconds_left + 86400.0 * 2


def _show(resource: str, value: Amount) -> Any:
    return str(value) if isinstance(value, Decimal) or resource == "usd" else value
