"""The ledger: reserve before a call, commit after, refuse what does not fit (never an overshoot).

Every check-and-reserve happens under one lock, so concurrent reservations (threads or asyncio tasks) can
never exceed a cap. A *hold* is a standing reserve (the final-answer call) that ordinary reservations may not
touch. A child ledger reserves through its parent, so a sub-agent's spend is the parent's spend, its own
caps bound it, and whatever it does not use simply stays with the parent.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from ..errors import BudgetExceeded, ConfigError
from .limits import TOOL_PREFIX, Amount, Budget, tool_key

if TYPE_CHECKING:
    from .store import Account, Grant

__all__ = ["Ledger", "Regime", "Reservation", "Usage", "check_amounts", "regime_of"]

Regime = Literal["HIGH", "MEDIUM", "LOW", "CRITICAL"]
_ids = itertools.count(1)
_log = logging.getLogger(__name__)
_JOURNAL_MAX = 5000


def regime_of(fraction: float | None) -> Regime:
    """BATS regimes by remaining fraction: >= 70% HIGH, 30-70% MEDIUM, 10-30% LOW, < 10% CRITICAL."""
    if fraction is None or fraction >= 0.7:
        return "HIGH"
    if fraction >= 0.3:
        return "MEDIUM"
    if fraction >= 0.1:
        return "LOW"
    return "CRITICAL"


def check_amounts(amounts: Mapping[str, Any], what: str) -> None:
    """Amounts given to a ledger or a store: finite numbers >= 0 under known keys. Anything else is a bug in
    the caller (outside figures are checked where they enter), so it raises instead of loosening a cap."""
    for key, amount in amounts.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{what}: resource keys are non-empty strings, got {key!r}")
        if isinstance(amount, bool) or not isinstance(amount, int | float | Decimal):
            raise ConfigError(f"{what}: {key} must be a number, got {amount!r}")
        finite = amount.is_finite() if isinstance(amount, Decimal) else math.isfinite(amount)
        if not finite or amount < 0:
            raise ConfigError(f"{what}: {key} must be a finite number >= 0, got {amount!r}")


def _zero(key: str) -> Any:
    return Decimal(0) if key == "usd" else 0


def _plain(value: Amount) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def _restore(key: str, value: Any) -> Amount:
    if key == "usd":
        return Decimal(str(value))
    if key == "seconds":
        return float(value)
    return int(value)


def _json_number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return round(value, 3) if isinstance(value, float) else value


def _status_row(name: str, kind: str, used: Any, limit: Any, left: Any) -> dict[str, Any]:
    fraction = None if left is None or not limit else float(left) / float(limit)
    return {
        "name": name,
        "kind": kind,
        "used": _json_number(used),
        "limit": _json_number(limit),
        "remaining": _json_number(left),
        "regime": regime_of(1.0 if not limit else fraction),
    }


@dataclass(frozen=True, slots=True)
class Reservation:
    """Amounts set aside for one call until it is committed or refunded."""

    id: int
    amounts: Mapping[str, Amount]
    role: str | None = None
    parent: Reservation | None = None
    grant: Grant | None = None
    """The part held in a budget store's account, when the ledger has one."""


@dataclass(frozen=True, slots=True)
class Usage:
    """What a run spent. ``tool_calls`` counts units per tool (one per call, or per query/URL when batched)."""

    tool_calls: Mapping[str, int] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    llm_calls: int = 0
    usd: Decimal = Decimal(0)
    seconds: float = 0.0
    by_role: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def total_tool_calls(self) -> int:
        return sum(self.tool_calls.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool_calls": dict(self.tool_calls),
            "total_tool_calls": self.total_tool_calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "llm_calls": self.llm_calls,
            "usd": float(self.usd),
            "seconds": round(self.seconds, 3),
            "by_role": {k: dict(v) for k, v in self.by_role.items()},
        }


class Ledger:
    """Live budget accounting for one run (see the architecture's seven rules)."""

    def __init__(
        self,
        budget: Budget | None = None,
        *,
        parent: Ledger | None = None,
        clock: Callable[[], float] = time.monotonic,
        account: Account | None = None,
    ) -> None:
        self.budget = budget or Budget()
        self.parent = parent
        self.account = account
        """A budget store's account this ledger also reserves through (spend shared across runs)."""
        self._limits: dict[str, Any] = self.budget.limits()
        # Any: a key always holds one numeric type (Decimal for usd, float for seconds, int otherwise)
        self._spent: dict[str, Any] = {}
        self._reserved: dict[str, Any] = {}
        self._hold: dict[str, Any] = {}
        self._by_role: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._seconds_base = 0.0
        self._started = clock()
        self.journal: list[dict[str, Any]] = []
        """Every reservation, refusal, commit and refund in order (the budget timeline a viewer draws)."""

    # -- reading -------------------------------------------------------------------------------
    @property
    def limits(self) -> Mapping[str, Amount]:
        return self._limits

    def elapsed(self) -> float:
        return self._seconds_base + (self._clock() - self._started)

    def spent(self, key: str) -> Any:
        if key == "seconds":
            return self.elapsed()
        return self._spent.get(key, _zero(key))

    def remaining(self, key: str) -> Any:
        """What is left of a capped resource (reservations in flight count as used); None if uncapped."""
        limit = self._limits.get(key)
        own: Any = None
        if limit is not None:
            own = limit - self.spent(key) - self._reserved.get(key, _zero(key))
            own = max(own, _zero(key))
        if self.parent is not None:
            up = self.parent.remaining(key)
            if up is not None and (own is None or up < own):
                own = up
        return self._account_bound(key, own)

    def _account_bound(self, key: str, own: Any, keep: Any = None) -> Any:
        if self.account is None or not self.account.caps(key):
            return own
        left = self.account.available(key)
        if left is not None and keep:
            left = max(left - keep, _zero(key))
        return left if own is None or (left is not None and left < own) else own

    def available(self, key: str, *, use_hold: bool = False) -> Any:
        """What one more reservation of ``key`` could take now: what :meth:`try_reserve` would admit, up the
        chain of parents (a parent's hold is never available to a child). None if no ledger caps it."""
        limit = self._limits.get(key)
        own: Any = None
        if limit is not None:
            own = limit - self.spent(key) - self._reserved.get(key, _zero(key))
            if not use_hold:
                own -= self._hold.get(key, _zero(key))
            own = max(own, _zero(key))
        if self.parent is not None:
            up = self.parent.available(key, use_hold=False)
            if up is not None and (own is None or up < own):
                own = up
        return self._account_bound(key, own, None if use_hold else self._hold.get(key))

    def caps(self, key: str) -> bool:
        """Whether this ledger or one of its parents caps ``key``."""
        return (
            key in self._limits
            or (self.parent is not None and self.parent.caps(key))
            or (self.account is not None and self.account.caps(key))
        )

    def fraction_remaining(self, key: str) -> float | None:
        limit = self._limits.get(key)
        rem = self.remaining(key)
        if limit is None or rem is None:
            return None
        return 1.0 if not limit else float(rem) / float(limit)

    def capped(self) -> list[str]:
        """Keys of the capped resources, tools first."""
        return list(self._limits)

    def regime(self) -> Regime:
        """The regime of the scarcest resource the run can still use (an account's caps included). A tool at
        zero is out, CRITICAL for itself, and does not set the run's regime while another tool is funded;
        with every capped tool at zero, the run is CRITICAL."""
        tools = [k for k in self._limits if k.startswith(TOOL_PREFIX)]
        spent_tools = [k for k in tools if (self.remaining(k) or 0) <= 0]
        if tools and len(spent_tools) == len(tools):
            return "CRITICAL"
        fractions = [
            f for k in self._limits if k not in spent_tools and (f := self.fraction_remaining(k)) is not None
        ]
        if self.account is not None:
            usage = self.account.usage()
            for key, limit in usage.limits.items():
                left = usage.remaining(key)
                if left is not None:
                    fractions.append(1.0 if not limit else float(left) / float(limit))
        return regime_of(min(fractions) if fractions else None)

    def tool_remaining(self, name: str) -> int | None:
        """Units left for a tool: its own cap and the total tool cap, whichever is smaller."""
        values = [r for r in (self.remaining(tool_key(name)), self.remaining("tool_calls")) if r is not None]
        return int(min(values)) if values else None

    def status(self) -> list[dict[str, Any]]:
        """Each capped resource as an app shows it: name, kind (``tool``, ``resource`` or ``account``), used,
        limit, remaining and regime; plain JSON numbers (dollars as float), tools by their own name."""
        rows: list[dict[str, Any]] = []
        for key, limit in self._limits.items():
            left = self.remaining(key)
            tool = key.startswith(TOOL_PREFIX)
            rows.append(
                _status_row(
                    key[len(TOOL_PREFIX) :] if tool else key,
                    "tool" if tool else "resource",
                    self.spent(key),
                    limit,
                    left,
                )
            )
        if self.account is not None:
            usage = self.account.usage()
            window = usage.window if usage.window == "total" else f"{usage.window} {usage.bucket}"
            for key, limit in usage.limits.items():
                tool = key.startswith(TOOL_PREFIX)
                row = _status_row(
                    key[len(TOOL_PREFIX) :] if tool else key,
                    "account",
                    usage.spent.get(key, _zero(key)),
                    limit,
                    usage.remaining(key),
                )
                rows.append({**row, "account": self.account.key, "window": window, "tool": tool})
        return rows

    def usage(self) -> Usage:
        tools = {k[len(TOOL_PREFIX) :]: int(v) for k, v in self._spent.items() if k.startswith(TOOL_PREFIX)}
        usd = self._spent.get("usd", Decimal(0))
        return Usage(
            tool_calls=tools,
            input_tokens=int(self._spent.get("input_tokens", 0)),
            output_tokens=int(self._spent.get("output_tokens", 0)),
            cached_input_tokens=int(self._spent.get("cached_input_tokens", 0)),
            llm_calls=int(self._spent.get("llm_calls", 0)),
            usd=usd if isinstance(usd, Decimal) else Decimal(str(usd)),
            seconds=self.elapsed(),
            by_role={k: dict(v) for k, v in self._by_role.items()},
        )

    # -- the journal ---------------------------------------------------------------------------
    def _note(
        self, event: str, amounts: Mapping[str, Amount], role: str | None, rid: int | None, **extra: Any
    ) -> None:
        if len(self.journal) >= _JOURNAL_MAX:
            return
        tool = next((k[len(TOOL_PREFIX) :] for k in amounts if k.startswith(TOOL_PREFIX)), None)
        entry: dict[str, Any] = {
            "t": round(self.elapsed(), 4),
            "event": event,
            "what": f"model:{role}" if role is not None else tool_key(tool) if tool else "other",
            "id": rid,
            "amounts": {k: _plain(v) for k, v in amounts.items() if v},
            **extra,
        }
        if event in ("commit", "refused"):
            entry["remaining"] = {k: _plain(r) for k in self._limits if (r := self.remaining(k)) is not None}
        self.journal.append(entry)

    # -- reserving -----------------------------------------------------------------------------
    def set_hold(self, amounts: Mapping[str, Amount]) -> None:
        """Set the standing reserve (only reservations with ``use_hold=True`` may dip into it). Every resource
        is held, capped here or not: an account's store keeps it from whichever caps it has when it reserves,
        an operator's cap added while the run goes on included."""
        with self._lock:
            self._hold = {k: v for k, v in amounts.items() if v}

    @property
    def hold(self) -> Mapping[str, Amount]:
        return self._hold

    def _refusal(self, amounts: Mapping[str, Amount], use_hold: bool) -> BudgetExceeded | None:
        if "seconds" in self._limits and self.elapsed() >= self._limits["seconds"]:
            return BudgetExceeded("seconds", "any time", 0, self._limits["seconds"])
        for key, amount in amounts.items():
            limit = self._limits.get(key)
            if limit is None or not amount:
                continue
            available = limit - self._spent.get(key, _zero(key)) - self._reserved.get(key, _zero(key))
            if not use_hold:
                available -= self._hold.get(key, _zero(key))
            if amount > available:
                return BudgetExceeded(key, _plain(amount), _plain(max(available, _zero(key))), _plain(limit))
        return None

    def try_reserve(
        self, amounts: Mapping[str, Amount], *, role: str | None = None, use_hold: bool = False
    ) -> Reservation | BudgetExceeded:
        """Reserve atomically, or return the refusal (which resource, requested, remaining). With an account,
        the store takes its part too; a store refusal undoes the local reservation."""
        check_amounts(amounts, "Ledger.try_reserve")
        local = self._try_reserve_local(amounts, role=role, use_hold=use_hold)
        if isinstance(local, BudgetExceeded):
            self._note("refused", amounts, role, None, resource=local.resource)
            return local
        if self.account is not None:
            try:
                grant = self.account.try_reserve(amounts, keep=None if use_hold else self._hold)
            except BaseException:
                self.refund(local)
                raise
            if isinstance(grant, BudgetExceeded):
                self.refund(local)
                self._note("refused", amounts, role, None, resource=grant.resource, account=self.account.key)
                return grant
            local = Reservation(local.id, local.amounts, local.role, local.parent, grant)
        self._note("reserve", amounts, role, local.id)
        return local

    def _try_reserve_local(
        self, amounts: Mapping[str, Amount], *, role: str | None, use_hold: bool
    ) -> Reservation | BudgetExceeded:
        with self._lock:
            refusal = self._refusal(amounts, use_hold)
            if refusal is not None:
                return refusal
            up: Reservation | BudgetExceeded | None = None
            if self.parent is not None:  # a child's hold is its own: the parent's hold stays the parent's
                up = self.parent.try_reserve(amounts, role=role, use_hold=False)
                if isinstance(up, BudgetExceeded):
                    return up
            for key, amount in amounts.items():
                if amount:
                    self._reserved[key] = self._reserved.get(key, _zero(key)) + amount
            return Reservation(next(_ids), dict(amounts), role, up if isinstance(up, Reservation) else None)

    def reserve(
        self, amounts: Mapping[str, Amount], *, role: str | None = None, use_hold: bool = False
    ) -> Reservation:
        """Like :meth:`try_reserve` but raises :class:`BudgetExceeded` on refusal."""
        result = self.try_reserve(amounts, role=role, use_hold=use_hold)
        if isinstance(result, BudgetExceeded):
            raise result
        return result

    def commit(self, reservation: Reservation, actual: Mapping[str, Amount] | None = None) -> None:
        """Record what the call really used (default: what was reserved) and release the reservation.

        ``actual`` may hold keys that were not reserved (e.g. ``cached_input_tokens``); they are recorded.
        """
        used = reservation.amounts if actual is None else actual
        check_amounts(used, "Ledger.commit")
        with self._lock:
            self._release(reservation)
            for key, amount in used.items():
                if amount:
                    self._spent[key] = self._spent.get(key, _zero(key)) + amount
            if reservation.role is not None and "llm_calls" in used:
                row = self._by_role.setdefault(
                    reservation.role, {"input_tokens": 0, "output_tokens": 0, "llm_calls": 0}
                )
                for key in row:
                    row[key] += int(used.get(key, 0))
        if self.parent is not None and reservation.parent is not None:
            self.parent.commit(reservation.parent, used)
        self._note("commit", used, reservation.role, reservation.id)
        if self.account is not None and reservation.grant is not None:
            if not self.account.commit(reservation.grant, used):
                _log.warning(
                    "account %r: a call committed after its %.0f s lease had expired; the account had counted "
                    "its reservation as spent meanwhile, and now counts what it used (raise lease_s above your "
                    "longest call)",
                    self.account.key,
                    self.account.lease_s,
                )

    def refund(self, reservation: Reservation) -> None:
        """Release a reservation whose call did not run."""
        with self._lock:
            self._release(reservation)
        if self.parent is not None and reservation.parent is not None:
            self.parent.refund(reservation.parent)
        self._note("refund", reservation.amounts, reservation.role, reservation.id)
        if self.account is not None and reservation.grant is not None:
            self.account.release(reservation.grant)

    def _release(self, reservation: Reservation) -> None:
        for key, amount in reservation.amounts.items():
            if amount:
                self._reserved[key] = self._reserved.get(key, _zero(key)) - amount

    # -- children and persistence --------------------------------------------------------------
    def grant(self, key: str, amount: Amount, *, by: str, reason: str = "") -> Amount:
        """Raise the cap of ``key`` by ``amount`` mid-run (an extension ``by`` someone, e.g. turn control,
        ``reason`` why); journaled as a ``grant``. Returns the new cap. A parent's or an account's caps still
        bind; a resource this ledger does not cap cannot be granted."""
        if isinstance(amount, bool) or not amount > 0:
            raise ConfigError(f"a grant of {key} must be positive, got {amount!r}")
        with self._lock:
            if key not in self._limits:
                raise ConfigError(f"cannot grant more {key}: this ledger does not cap it")
            self._limits[key] = self._limits[key] + amount
            new: Amount = self._limits[key]
            self._note("grant", {key: amount}, None, None, by=by, reason=reason[:500], limit=_plain(new))
        return new

    def set_cap(self, key: str, cap: Amount, *, by: str) -> None:
        """Set the cap of ``key`` (one this ledger caps) to ``cap``, raised or lowered, never below what is spent
        and reserved (an operator's change ``by`` someone); journaled as a ``limit``."""
        with self._lock:
            if key not in self._limits:
                raise ConfigError(f"cannot set {key}: this ledger does not cap it")
            taken = self._spent.get(key, _zero(key)) + self._reserved.get(key, _zero(key))
            if cap < taken:
                raise ConfigError(
                    f"{key} cannot be capped at {_plain(cap)}: {_plain(taken)} is already spent"
                )
            self._limits[key] = cap
            self._note("limit", {}, None, None, by=by, key=key, limit=_plain(cap))

    def child(self, budget: Budget | None = None) -> Ledger:
        """A ledger for a sub-agent: bounded by ``budget`` and by whatever this ledger has left."""
        return Ledger(budget, parent=self, clock=self._clock)

    def snapshot(self) -> dict[str, Any]:
        """Plain, JSON-able state for graph state and checkpoints (dollars as exact strings). Reservations in
        flight are kept apart (``reserved``): a ledger rebuilt from the snapshot counts them as spent."""
        with self._lock:
            return {
                "limits": {k: _plain(v) for k, v in self._limits.items()},
                "spent": {k: _plain(v) for k, v in self._spent.items()},
                "reserved": {k: _plain(v) for k, v in self._reserved.items() if v},
                "seconds": self.elapsed(),
                "hold": {k: _plain(v) for k, v in self._hold.items()},
                "by_role": {k: dict(v) for k, v in self._by_role.items()},
            }

    @classmethod
    def from_snapshot(
        cls,
        data: Mapping[str, Any],
        *,
        clock: Callable[[], float] = time.monotonic,
        account: Account | None = None,
    ) -> Ledger:
        """Rebuild a ledger that continues from what was really spent; what was in flight when the snapshot was
        taken counts as spent (the call may have happened: at most once, never twice). An account is not part
        of the snapshot (its figures live in its store): pass it again."""
        limits = {k: _restore(k, v) for k, v in data.get("limits", {}).items()}
        ledger = cls(Budget.from_limits(limits), clock=clock, account=account)
        ledger._spent = {k: _restore(k, v) for k, v in data.get("spent", {}).items()}
        for k, v in data.get("reserved", {}).items():
            ledger._spent[k] = ledger._spent.get(k, _zero(k)) + _restore(k, v)
        ledger._hold = {k: _restore(k, v) for k, v in data.get("hold", {}).items()}
        ledger._by_role = {k: dict(v) for k, v in data.get("by_role", {}).items()}
        ledger._seconds_base = float(data.get("seconds", 0.0))
        return ledger

    def __repr__(self) -> str:
        parts = [f"{k}={_plain(self.spent(k))}/{_plain(v)}" for k, v in self._limits.items()]
        return f"Ledger({', '.join(parts) or 'unlimited'})"
