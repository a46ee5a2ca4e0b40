"""The key cache: a stale cache is refreshed behind the requests, never in front of them."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from churnops.config import Settings
from churnops.serving.auth import KeyCache, Principal, create_key, hash_key, revoke_key


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", serve_key_cache_seconds=5.0)


def test_a_stale_cache_answers_from_memory_while_it_refreshes(settings: Settings) -> None:
    """Requests after the cache period do not wait for the store (the old p99 stall).

    The refresh is held inside the store read; a lookup still answers from the keys in
    memory, and once the refresh lands a revoked key is refused.
    """
    key = create_key(settings, "crm", "scorer")["key"]
    cache = KeyCache(settings)
    cache.refresh()
    read_started, release = threading.Event(), threading.Event()
    real_refresh = cache.refresh

    def slow_refresh() -> None:
        read_started.set()
        release.wait(10)
        revoke_key(settings, "crm")  # revoked while the read was held up
        real_refresh()

    async def scenario() -> None:
        cache._loaded_at -= 60  # stale
        cache.refresh = slow_refresh  # type: ignore[method-assign]
        found = await asyncio.wait_for(cache.lookup(key), timeout=5)
        assert found == Principal("crm", "scorer")  # answered from memory, not the store
        assert await asyncio.to_thread(read_started.wait, 5)
        pending = cache._pending
        assert pending is not None
        assert not pending.done()
        release.set()
        await asyncio.wait_for(pending, timeout=5)
        assert cache._keys.get(hash_key(key)) is None

    asyncio.run(scenario())


def test_a_cache_period_of_zero_always_reads_the_store(settings: Settings) -> None:
    """serve_key_cache_seconds=0: every lookup sees revocations at once."""
    strict = settings.model_copy(update={"serve_key_cache_seconds": 0.0})
    key = create_key(strict, "crm", "scorer")["key"]
    cache = KeyCache(strict)

    async def scenario() -> None:
        assert await cache.lookup(key) == Principal("crm", "scorer")
        revoke_key(strict, "crm")
        assert await cache.lookup(key) is None

    asyncio.run(scenario())


def test_a_new_key_sent_by_many_connections_at_once_is_accepted_by_all(
    settings: Settings,
) -> None:
    """Concurrent first requests with a key created a moment ago all wait for one read.

    Before, the first one started the store read and the others, inside the one-second
    miss window, were answered 401 from the old keys (seen as a stray non-2xx under load).
    """
    cache = KeyCache(settings)
    cache.refresh()
    key = create_key(settings, "crm", "scorer")["key"]
    reads = 0
    real_refresh = cache.refresh

    def counted_refresh() -> None:
        nonlocal reads
        reads += 1
        real_refresh()

    async def scenario() -> list[Principal | None]:
        cache.refresh = counted_refresh  # type: ignore[method-assign]
        return await asyncio.gather(*(cache.lookup(key) for _ in range(16)))

    found = asyncio.run(scenario())
    assert found == [Principal("crm", "scorer")] * 16
    assert reads == 1
    assert asyncio.run(cache.lookup("chk_made_up")) is None  # an unknown key still fails
