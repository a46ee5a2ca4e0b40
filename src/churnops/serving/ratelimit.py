"""Per-key token buckets: in-process by default, shared through Redis when configured.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second; each
request takes one. When it is empty the caller gets 429 with ``Retry-After`` = seconds
until the next token. In-process buckets are per worker; with ``CHURNOPS_REDIS_URL`` set,
all workers and replicas share one bucket per key through a Lua script, which Redis runs
atomically (read, refill, take, write in one step) using Redis' own clock, so replicas
with skewed clocks still agree.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from churnops.errors import RateLimitedError

log = logging.getLogger("churnops.serving")

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

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
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
        _refuse(key, (1.0 - tokens) / self.rate)

    async def close(self) -> None:
        """Nothing to release."""


class RedisLimiter:
    """Token buckets in Redis, shared by every worker and replica using the same Redis."""

    def __init__(self, url: str, rate: float, burst: int, namespace: str) -> None:
        import redis.asyncio as redis

        self.rate = rate
        self.burst = burst
        self.namespace = namespace
        self._client = redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._script: Any = self._client.register_script(_LUA)
        self._ttl = max(1, math.ceil(burst / rate) + 1)
        self._warned_at = -1e9

    async def take(self, key: str) -> None:
        """Take one token for ``key`` or raise RateLimitedError with Retry-After."""
        from redis.exceptions import RedisError

        try:
            allowed, retry_ms = await self._script(
                keys=[f"{self.namespace}:{key}"], args=[self.rate, self.burst, self._ttl]
            )
        except (RedisError, OSError) as exc:
            # Fail open: an unreachable Redis must not take scoring down with it.
            now = time.monotonic()
            if now - self._warned_at > 10:
                self._warned_at = now
                log.warning("rate limiter: Redis unreachable, not limiting (%s)", exc)
            return
        if not int(allowed):
            _refuse(key, int(retry_ms) / 1000)

    async def close(self) -> None:
        """Close the Redis connection pool."""
        await self._client.aclose()


def _refuse(key: str, wait: float) -> None:
    retry_after = max(1, math.ceil(wait))
    raise RateLimitedError(
        f"Rate limit exceeded for key {key!r}; retry in {retry_after}s.",
        {"retry_after": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


def make_limiter(
    rate: float, burst: int, redis_url: str | None, namespace: str = "churnops:ratelimit"
) -> LocalLimiter | RedisLimiter | None:
    """Return the limiter the settings ask for (None when rate limiting is off)."""
    if rate <= 0:
        return None
    if redis_url:
        return RedisLimiter(redis_url, rate, burst, namespace)
    return LocalLimiter(rate, burst)
