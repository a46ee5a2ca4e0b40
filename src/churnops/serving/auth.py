"""API keys: created once and shown once, stored only as SHA-256 hashes, with a role each.

Keys are 32 random bytes (``secrets.token_urlsafe``), so a fast unsalted hash is the right
tool: nobody can brute-force 256 bits, and the check must cost microseconds on every
request (bcrypt/argon2 are for low-entropy passwords). Roles: ``scorer`` may score and
read model info; ``admin`` may also reload.

The API keeps the active hashes in memory and refreshes them from the store every
``serve_key_cache_seconds`` (so ``churnops keys revoke`` takes effect within that delay),
and on an unknown key at most once a second (so a new key works at once without letting
bad keys hammer the database).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa

from churnops.config import Settings
from churnops.errors import ConfigError

Role = Literal["scorer", "admin"]
ROLES: tuple[str, ...] = ("scorer", "admin")
KEY_PREFIX = "chk_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name and role (never the key)."""

    name: str
    role: str

    def allows(self, role: str) -> bool:
        """Return True when this principal may act as ``role`` (admin may do anything)."""
        return self.role == "admin" or self.role == role


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


class KeyCache:
    """Active key hashes in memory, refreshed from the store in the background of requests."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ttl = settings.serve_key_cache_seconds
        self._keys: dict[str, Principal] = {}
        self._loaded_at = -1e9
        self._miss_refresh_at = -1e9
        self._lock = threading.Lock()

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

    def lookup(self, key: str) -> Principal | None:
        """Return the principal of ``key``, or None when it is unknown or revoked."""
        now = time.monotonic()
        digest = hash_key(key)
        if now - self._loaded_at > self.ttl:
            with self._lock:
                if now - self._loaded_at > self.ttl:
                    self.refresh()
        found = self._keys.get(digest)
        if found is None and now - self._miss_refresh_at > 1.0:
            with self._lock:
                self._miss_refresh_at = now
                self.refresh()
            found = self._keys.get(digest)
        return found
