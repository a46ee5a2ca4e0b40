"""Token buckets per client address and per key: in-process, or shared through Redis.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second; each
request takes one. When it is empty the caller gets 429 with ``Retry-After`` = seconds
until the next token. In-process buckets are per worker; with ``CHURNOPS_REDIS_URL`` set,
all workers and replicas share one bucket per address and per key through a Lua script,
which Redis runs atomically (read, refill, take, write in one step) using Redis' own clock,
so replicas with skewed clocks still agree.

Two families of buckets, charged in this order (see ``serving/deps.py``): one per client
address, taken *before* the key is checked, so requests with unknown or missing keys are
limited too; then one per key. Each family is its own namespace, so no key name can
collide with an address.

While Redis is unreachable, ``serve_rate_limit_on_redis_error`` decides: ``local`` (the
default) limits with in-process buckets (each worker's own share, so the budget is per
worker until Redis is back), ``open`` does not limit, ``closed`` answers 503. Either way
``churnops_ratelimit_redis_unavailable_total`` counts the requests decided without Redis
and a warning is logged at most every ``WARN_SECONDS``; Redis is tried again after
``RETRY_SECONDS``, so an outage costs one failed connection per second, not one per request.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Literal

from churnops.errors import RateLimitedError, ServiceUnavailableError

log = logging.getLogger("churnops.serving")

OnRedisError = Literal["local", "open", "closed"]
WARN_SECONDS = 10.0
RETRY_SECONDS = 1.0
NAMESPACE = "churnops:ratelimit"
_EFFECT = {
    "local": "limiting in each process instead",
    "open": "not limiting",
    "closed": "refusing requests (503)",
}

# KEYS[1] = bucket key; ARGV = rate (tokens/s), burst, ttl (s). Returns {allowed, retry_ms}.
_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + (now - ts) * rate / 1000000)
local allowed = 0
local retry_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry_ms = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return {allowed, retry_ms}
"""


class LocalLimiter:
    """Token buckets in this process's memory (one worker's share of the budget)."""

    def __init__(self, rate: float, burst: int, what: str = "key") -> None:
        self.rate = rate
        self.burst = float(burst)
        self.what = what
        self._buckets: dict[str, list[float]] = {}

    async def take(self, key: str) -> None:
        """Take one token for ``key`` or raise RateLimitedError with Retry-After."""
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = [self.burst, now]
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return
        bucket[0] = tokens
        _refuse(self.what, key, (1.0 - tokens) / self.rate)


class RedisBackend:
    """One Redis connection pool shared by both bucket families, and its outage policy."""

    def __init__(self, url: str, on_error: OnRedisError, unavailable: Any) -> None:
        import redis.asyncio as redis

        self.on_error = on_error
        self.client = redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._script: Any = self.client.register_script(_LUA)
        self._unavailable = unavailable.labels(on_error).inc
        self._retry_at = -math.inf
        self._warned_at = -math.inf

    async def take(self, key: str, rate: float, burst: int, ttl: int) -> tuple[int, int] | None:
        """Run the bucket script; None while Redis is unreachable (the policy decides)."""
        from redis.exceptions import RedisError

        now = time.monotonic()
        if now < self._retry_at:
            self._unavailable()
            return None
        try:
            allowed, retry_ms = await self._script(keys=[key], args=[rate, burst, ttl])
        except (RedisError, OSError) as exc:
            self._retry_at = time.monotonic() + RETRY_SECONDS
            self._unavailable()
            if now - self._warned_at > WARN_SECONDS:
                self._warned_at = now
                log.warning(
                    "rate limiter: Redis unreachable (%s: %s); %s",
                    type(exc).__name__,
                    exc,
                    _EFFECT[self.on_error],
                )
            return None
        return int(allowed), int(retry_ms)

    async def close(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()


class RedisLimiter:
    """One family of buckets in Redis, shared by every worker and replica."""

    def __init__(self, backend: RedisBackend, rate: float, burst: int, what: str) -> None:
        self.backend = backend
        self.rate = rate
        self.burst = burst
        self.what = what
        self.prefix = f"{NAMESPACE}:{what}:"
        self._ttl = max(1, math.ceil(burst / rate) + 1)
        self._local = LocalLimiter(rate, burst, what)

    async def take(self, key: str) -> None:
        """Take one token for ``key`` or raise RateLimitedError (503 when failing closed)."""
        result = await self.backend.take(self.prefix + key, self.rate, self.burst, self._ttl)
        if result is None:
            policy = self.backend.on_error
            if policy == "local":
                await self._local.take(key)
            elif policy == "closed":
                raise ServiceUnavailableError(
                    "The rate limiter's store is unreachable; retry shortly.",
                    {"retry_after": 1},
                    headers={"Retry-After": "1"},
                )
            return
        allowed, retry_ms = result
        if not allowed:
            _refuse(self.what, key, retry_ms / 1000)


Limiter = LocalLimiter | RedisLimiter


@dataclass
class RateLimits:
    """The app's two bucket families (None = that family is off) and their backend."""

    address: Limiter | None
    key: Limiter | None
    backend: RedisBackend | None = None

    async def close(self) -> None:
        """Release the Redis connection pool, if any."""
        if self.backend is not None:
            await self.backend.close()


def make_limits(
    *,
    key_rate: float,
    key_burst: int,
    address_rate: float,
    address_burst: int,
    redis_url: str | None,
    on_redis_error: OnRedisError,
    unavailable: Any,
) -> RateLimits:
    """Return the limiters the settings ask for (a rate of 0 turns that family off).

    ``unavailable`` is the Prometheus counter (labelled by policy) of requests decided
    without Redis.
    """
    families = {"address": (address_rate, address_burst), "key": (key_rate, key_burst)}
    if not redis_url or all(rate <= 0 for rate, _ in families.values()):
        limiters = {
            what: LocalLimiter(rate, burst, what) if rate > 0 else None
            for what, (rate, burst) in families.items()
        }
        return RateLimits(**limiters)
    backend = RedisBackend(redis_url, on_redis_error, unavailable)
    limiters = {
        what: RedisLimiter(backend, rate, burst, what) if rate > 0 else None
        for what, (rate, burst) in families.items()
    }
    return RateLimits(**limiters, backend=backend)


def _refuse(what: str, key: str, wait: float) -> None:
    retry_after = max(1, math.ceil(wait))
    raise RateLimitedError(
        f"Rate limit exceeded for {what} {key!r}; retry in {retry_after}s.",
        {"retry_after": retry_after},
        headers={"Retry-After": str(retry_after)},
    )
