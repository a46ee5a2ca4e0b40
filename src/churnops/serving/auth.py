"""API keys: created once and shown once, stored only as SHA-256 hashes, with a role each.

Keys are 32 random bytes (``secrets.token_urlsafe``), so a fast unsalted hash is the right
tool: nobody can brute-force 256 bits, and the check must cost microseconds on every
request (bcrypt/argon2 are for low-entropy passwords). Roles: ``scorer`` may score and
read model info; ``analyst`` may read (the dashboard, report routes and model info) but
not score; ``admin`` may do anything, including reload, promote and roll back.

The API keeps the active hashes in memory and refreshes them from the store every
``serve_key_cache_seconds`` (so ``churnops keys revoke`` takes effect within that delay),
and on an unknown key at most once a second (so a new key works at once without letting
bad keys hammer the database); the queries run in a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa

from churnops.config import Settings
from churnops.errors import ConfigError

log = logging.getLogger("churnops.serving")

Role = Literal["scorer", "analyst", "admin"]
ROLES: tuple[str, ...] = ("scorer", "analyst", "admin")
KEY_PREFIX = "chk_"
MISS_REFRESH_SECONDS = 1.0


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name and role (never the key)."""

    name: str
    role: str

    def allows(self, *roles: str) -> bool:
        """Return True when this principal may act as one of ``roles`` (admin may do anything)."""
        return self.role == "admin" or self.role in roles


ANONYMOUS = Principal("anonymous", "admin")  # only with --insecure-no-auth


def hash_key(key: str) -> str:
    """Return the stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(settings: Settings, name: str, role: str) -> dict[str, Any]:
    """Create an API key and return it with its metadata; the key is not stored anywhere."""
    from churnops.store import ApiKey, session_scope

    if role not in ROLES:
        raise ConfigError(f"Unknown role {role!r}; choose from: {', '.join(ROLES)}.")
    if not name or len(name) > 200:
        raise ConfigError("A key name must be 1 to 200 characters.")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with session_scope(settings) as session:
        active = session.scalar(
            sa.select(ApiKey.id).where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
        )
        if active is not None:
            raise ConfigError(
                f"An active key named {name!r} exists; revoke it first or pick another name."
            )
        row = ApiKey(
            name=name,
            role=role,
            prefix=key[:10],
            key_hash=hash_key(key),
            created_at=datetime.now(UTC),
        )
        session.add(row)
    return {"name": name, "role": role, "prefix": key[:10], "key": key}


def list_keys(settings: Settings, include_revoked: bool = True) -> list[dict[str, Any]]:
    """Return every key's metadata (never a hash), newest first."""
    from churnops.store import ApiKey, session_scope

    with session_scope(settings) as session:
        query = sa.select(ApiKey).order_by(ApiKey.id.desc())
        if not include_revoked:
            query = query.where(ApiKey.revoked_at.is_(None))
        return [
            {
                "name": k.name,
                "role": k.role,
                "prefix": k.prefix,
                "created_at": k.created_at,
                "revoked_at": k.revoked_at,
                "active": k.revoked_at is None,
            }
            for k in session.scalars(query)
        ]


def revoke_key(settings: Settings, name: str) -> dict[str, Any]:
    """Revoke the active key called ``name``; raise ConfigError when there is none."""
    from churnops.store import ApiKey, session_scope

    with session_scope(settings) as session:
        rows = session.scalars(
            sa.select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
        ).all()
        if not rows:
            raise ConfigError(f"No active key named {name!r}; see `churnops keys list`.")
        now = datetime.now(UTC)
        for row in rows:
            row.revoked_at = now
    return {"name": name, "revoked": len(rows), "revoked_at": now}


def principal_for(settings: Settings, key: str) -> Principal | None:
    """Return who ``key`` belongs to (None when unknown or revoked): one indexed query.

    For callers that check a key once per session (the dashboard's login), not per request.
    """
    from churnops.store import ApiKey, session_scope

    if not key or len(key) > 200:
        return None
    with session_scope(settings) as session:
        row = session.execute(
            sa.select(ApiKey.name, ApiKey.role).where(
                ApiKey.key_hash == hash_key(key.strip()), ApiKey.revoked_at.is_(None)
            )
        ).first()
    return Principal(row[0], row[1]) if row else None


class KeyCache:
    """Active key hashes in memory, refreshed from the store off the event loop.

    Refreshes are bounded whatever the traffic: one every ``serve_key_cache_seconds``, plus
    one per ``MISS_REFRESH_SECONDS`` when an unknown key arrives (so a key created a moment
    ago works at once), and concurrent requests share the refresh in progress. A flood of
    made-up keys therefore costs the database at most one query a second. A store that
    cannot be read leaves the keys already loaded in force (logged), not a 500 per request.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ttl = settings.serve_key_cache_seconds
        self._keys: dict[str, Principal] = {}
        self._loaded_at = -1e9
        self._miss_refresh_at = -1e9
        self._warned_at = -1e9
        self._pending: asyncio.Future[None] | None = None

    def refresh(self) -> None:
        """Reload the active keys from the store."""
        from churnops.store import ApiKey, session_scope

        with session_scope(self.settings) as session:
            rows = session.execute(
                sa.select(ApiKey.key_hash, ApiKey.name, ApiKey.role).where(
                    ApiKey.revoked_at.is_(None)
                )
            ).all()
        self._keys = {h: Principal(n, r) for h, n, r in rows}
        self._loaded_at = time.monotonic()

    async def lookup(self, key: str) -> Principal | None:
        """Return the principal of ``key``, or None when it is unknown or revoked.

        A stale cache is refreshed in the background while requests go on with the keys
        in memory (a revocation applies one refresh later): awaiting it stalled every
        request in flight for as long as a database read competes with them for the GIL,
        every ``serve_key_cache_seconds`` — the API's p99 tail. Only the first load, an
        unknown key (a key created a moment ago) and a cache period of 0 (every request
        sees the store as it is) wait for the store.
        """
        now = time.monotonic()
        digest = hash_key(key)
        if now - self._loaded_at > self.ttl:
            if self._keys and self.ttl > 0:
                self._start_refresh()
            else:
                await self._refresh_shared()
        found = self._keys.get(digest)
        if found is None:
            if now - self._miss_refresh_at > MISS_REFRESH_SECONDS:
                self._miss_refresh_at = now
                await self._refresh_shared()
            elif self._pending is not None:
                # A refresh is reading the store right now (often for this very key, sent
                # by several connections at once): its answer decides, not the old keys.
                await asyncio.shield(self._pending)
            else:
                return None
            found = self._keys.get(digest)
        return found

    def _start_refresh(self) -> asyncio.Future[None]:
        """Start a refresh in a thread unless one is in progress; return it."""
        if self._pending is None:
            self._pending = asyncio.ensure_future(asyncio.to_thread(self._try_refresh))
            self._pending.add_done_callback(self._clear_pending)
        return self._pending

    async def _refresh_shared(self) -> None:
        """Join the refresh in progress or start one in a thread; keep old keys on failure."""
        await asyncio.shield(self._start_refresh())

    def _clear_pending(self, _future: asyncio.Future[None]) -> None:
        self._pending = None

    def _try_refresh(self) -> None:
        try:
            self.refresh()
        except Exception as exc:
            now = time.monotonic()
            self._loaded_at = now  # try again after the cache period, not on every request
            if now - self._warned_at > MISS_REFRESH_SECONDS * 10:
                self._warned_at = now
                log.warning(
                    "API keys: cannot read the store (%s); the keys loaded before stay in force",
                    type(exc).__name__,
                )
