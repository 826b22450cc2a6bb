"""The fleet budget store: Redis, one Lua script per operation (Redis runs a script atomically).

Each key's window lives in five Redis keys sharing the key's hash tag (one cluster slot): spent units, live
reserved units, each reservation's amounts, the reservations' lease deadlines (Redis's own clock) and the
lapsed reservations; beside them, the caps an operator set (read by the reserve script, so a change applies
at the next reservation, atomically).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from .._extras import require
from .._redact import redact, redact_url
from ..errors import BudgetStoreError
from .leases import RedisLeases
from .store import BudgetStore

__all__ = ["RedisBudgetStore"]

# KEYS: spent, reserved, held (id -> JSON {resource: "units"}), leases (zset id -> deadline ms), lapsed (id ->
# the JSON of a reservation whose lease expired: counted as spent, replaced by the truth if it is committed late).
# Amounts are kept as JSON strings, never parsed from delimiter-joined text: a name cannot forge an amount.
_HELPERS = """
local function amounts(enc)
  local ok, t = pcall(cjson.decode, enc)
  if ok and type(t) == 'table' then return t end
  return {}
end
"""
_PURGE = (
    _HELPERS
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)) do
  local enc = redis.call('HGET', KEYS[3], id)
  if enc then
    for res, amt in pairs(amounts(enc)) do
      redis.call('HINCRBY', KEYS[2], res, '-' .. amt)
      redis.call('HINCRBY', KEYS[1], res, amt)
    end
    redis.call('HDEL', KEYS[3], id)
    redis.call('HSET', KEYS[5], id, enc)
    local keep = redis.call('TTL', KEYS[4])
    if keep > 0 then
      redis.call('EXPIRE', KEYS[1], keep)
      redis.call('EXPIRE', KEYS[5], keep)
    end
  end
  redis.call('ZREM', KEYS[4], id)
end
"""
)
_EXPIRE = """
local ttl = tonumber(ARGV[2])
if ttl > 0 then for i = 1, 5 do redis.call('EXPIRE', KEYS[i], ttl) end end
"""
_RESERVE = (
    _PURGE
    + """
local n = tonumber(ARGV[4])
for i = 0, n - 1 do
  local res, amt, lim = ARGV[5 + 4 * i], tonumber(ARGV[6 + 4 * i]), tonumber(ARGV[7 + 4 * i])
  local cap = redis.call('HGET', KEYS[6], res)
  if cap then lim = tonumber(cap) end
  if lim >= 0 then lim = math.max(lim - tonumber(ARGV[8 + 4 * i]), 0) end
  if lim >= 0 and amt > 0 then
    local used = tonumber(redis.call('HGET', KEYS[1], res) or '0') + tonumber(redis.call('HGET', KEYS[2], res) or '0')
    if used + amt > lim then return {0, res, string.format('%d', math.max(lim - used, 0))} end
  end
end
local parts = {}
for i = 0, n - 1 do
  local res, amt = ARGV[5 + 4 * i], ARGV[6 + 4 * i]
  if tonumber(amt) > 0 then
    redis.call('HINCRBY', KEYS[2], res, amt)
    parts[res] = amt
  end
end
redis.call('HSET', KEYS[3], ARGV[1], next(parts) and cjson.encode(parts) or '{}')
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[3]), ARGV[1])
"""
    + _EXPIRE
    + "return {1}\n"
)
_DROP = """
local enc = redis.call('HGET', KEYS[3], ARGV[1])
local live = 0
if enc then
  live = 1
  for res, amt in pairs(amounts(enc)) do
    redis.call('HINCRBY', KEYS[2], res, '-' .. amt)
  end
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[4], ARGV[1])
else
  local lapsed = redis.call('HGET', KEYS[5], ARGV[1])
  if lapsed then
    for res, amt in pairs(amounts(lapsed)) do
      redis.call('HINCRBY', KEYS[1], res, '-' .. amt)
    end
    redis.call('HDEL', KEYS[5], ARGV[1])
  end
end
"""
_COMMIT = (
    _PURGE
    + _DROP
    + """
for i = 3, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
"""
    + _EXPIRE
    + "return live\n"
)
_RELEASE = _PURGE + _DROP + "return live\n"
_TOTALS = _PURGE + "return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}\n"


class RedisBudgetStore(BudgetStore):
    """Budget accounts in Redis, for processes on many machines. ``url`` is a redis:// URL."""

    def __init__(
        self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = "budgetgraph", client: Any = None
    ):
        redis = require("redis", "redis")
        self.url = redact_url(url)
        """The store's URL as errors and reprs show it: a password in it is masked."""
        self._secret = self.url != url
        self.prefix = prefix
        self._redis = client if client is not None else redis.Redis.from_url(url, socket_timeout=10)
        self._scripts = {
            name: self._redis.register_script(body)
            for name, body in (
                ("reserve", _RESERVE),
                ("commit", _COMMIT),
                ("release", _RELEASE),
                ("totals", _TOTALS),
            )
        }
        self._error = redis.RedisError

    def _keys(self, key: str, bucket: str) -> list[str]:
        tag = f"{self.prefix}:{{{key}}}"  # one slot per account: its windows and its operator caps
        names = ("spent", "reserved", "held", "leases", "lapsed")
        return [*(f"{tag}:{bucket}:{n}" for n in names), self._caps_key(key)]

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        try:
            out = self._scripts[name](keys=keys, args=args)
            _warn_if_volatile(self._redis, self.url, self._error)  # once per URL, on the first success
            return out
        except self._error as exc:
            raise BudgetStoreError(
                f"budget store {self.url}: {redact(str(exc))}; the call was not made (is the Redis server up "
                "and reachable?)"
            ) from None

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
        args: list[Any] = [rid, _ttl(ttl_s), int(lease_s * 1000), len(amounts)]
        for resource, amount in amounts.items():
            args += [resource, amount, limits.get(resource, -1), (keep or {}).get(resource, 0)]
        out = self._run("reserve", self._keys(key, bucket), args)
        if int(out[0]) == 1:
            return None
        return _text(out[1]), int(out[2])

    def _commit(
        self, key: str, bucket: str, rid: str, actual: Mapping[str, int], ttl_s: float | None
    ) -> bool:
        args: list[Any] = [rid, _ttl(ttl_s)]
        for resource, amount in actual.items():
            if amount:
                args += [resource, amount]
        return int(self._run("commit", self._keys(key, bucket), args)) == 1

    def _release(self, key: str, bucket: str, rid: str) -> None:
        self._run("release", self._keys(key, bucket), [rid])

    def _totals(self, key: str, bucket: str) -> tuple[dict[str, int], dict[str, int]]:
        spent, reserved = self._run("totals", self._keys(key, bucket), [])
        return _pairs(spent), _pairs(reserved)

    def _caps_key(self, key: str) -> str:
        return f"{self.prefix}:{{{key}}}:caps"

    def _stored_caps(self, key: str) -> dict[str, int]:
        try:
            return _pairs([x for pair in self._redis.hgetall(self._caps_key(key)).items() for x in pair])
        except self._error as exc:
            raise BudgetStoreError(
                f"budget store {self.url}: {redact(str(exc))}; the call was not made (is the Redis server up "
                "and reachable?)"
            ) from None

    def _store_caps(self, key: str, caps: Mapping[str, int | None]) -> None:
        try:
            pipe = self._redis.pipeline(transaction=True)  # MULTI/EXEC: all of a change or none
            for resource, amount in caps.items():
                if amount is None:
                    pipe.hdel(self._caps_key(key), resource)
                else:
                    pipe.hset(self._caps_key(key), resource, amount)
            pipe.execute()
        except self._error as exc:
            raise BudgetStoreError(
                f"budget store {self.url}: {redact(str(exc))}; the caps were not changed (is the Redis server "
                "up and reachable?)"
            ) from None

    def close(self) -> None:
        self._redis.close()

    def now(self) -> datetime:
        """The Redis server's clock (``TIME``), so that hosts with skewed clocks share every window."""
        try:
            seconds, micros = self._redis.time()
        except self._error as exc:
            raise BudgetStoreError(
                f"budget store {self.url}: {redact(str(exc))}; the call was not made (is the Redis server up "
                "and reachable?)"
            ) from None
        return datetime.fromtimestamp(int(seconds) + int(micros) / 1e6, timezone.utc)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "url": self.url,
            "prefix": self.prefix,
            "secret": self._secret,
        }

    @classmethod
    def reopen(cls, described: Mapping[str, Any]) -> RedisBudgetStore | None:
        if not described.get("url") or described.get("secret"):
            return None  # a password is never in a checkpoint: the caller passes the account again
        return cls(described["url"], prefix=described.get("prefix", "budgetgraph"))

    def leases(self) -> RedisLeases:
        """Thread leases on this store's server (``ThreadPolicy(leases=store.leases())``)."""
        return RedisLeases(self.url, prefix=self.prefix, client=self._redis)

    def __repr__(self) -> str:
        return f"RedisBudgetStore({self.url!r}, prefix={self.prefix!r})"


_CHECKED_URLS: set[str] = set()
_log = logging.getLogger(__name__)


def _warn_if_volatile(client: Any, url: str, error: type[Exception]) -> None:
    """Warn (once per URL) when the server keeps nothing across a restart: a restart would reset every
    account's spend. Managed servers that refuse CONFIG are not second-guessed."""
    if url in _CHECKED_URLS:
        return
    _CHECKED_URLS.add(url)
    try:
        aof = client.config_get("appendonly").get("appendonly")
        rdb = client.config_get("save").get("save")
    except (error, AttributeError, TypeError):
        return
    if aof in ("no", b"no") and rdb in ("", b""):
        _log.warning(
            "budget store %s: the Redis server keeps no data across a restart (appendonly no, no save "
            "points), so a restart forgets every account's spend and resets its caps; turn on appendonly",
            url,
        )


def _ttl(seconds: float | None) -> int:
    return 0 if seconds is None else max(int(seconds), 1)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: list[Any]) -> dict[str, int]:
    return {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
