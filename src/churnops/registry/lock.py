"""One champion change at a time: a lock in the operational store around every alias move.

Why: MLflow aliases are last-writer-wins and the champion history is a read-modify-write
of a registered-model tag. Two changes that overlap both read the same champion, both
record "from v1", and one of them drops out of the history (so a later rollback cannot
return to it). Every champion change — promote, rollback, a model's first registration —
therefore runs inside :func:`champion_lock` and reads the alias and the history *inside*
it, so each change is recorded exactly once, in order, from the champion it replaced.

What the lock covers: every process (and thread) that uses the same operational store.

- PostgreSQL store: a transaction-level advisory lock (``pg_advisory_xact_lock``) keyed by
  the model name, taken by the very session that writes the ``registry_events`` row. It
  serialises every host that shares the store, and a crashed holder's lock goes with its
  connection.
- SQLite store: an exclusive ``flock`` on a file beside the database file (one lock for
  all models of the store). SQLite is shared only by processes on one host, so this
  covers everyone who can write the same events.
  It is not SQLite's own write lock: that would hold off audit rows and batch runs for as
  long as MLflow takes to move the alias.

Writers that share a tracking store (an MLflow server) but *not* the operational store
are not serialised against each other: give every host that may promote or roll back the
same PostgreSQL store.
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.orm import Session

from churnops.config import Settings

# Threads of one process queue here before the store's lock, so a waiting thread holds no
# store connection: with many concurrent calls, waiters would otherwise drain the pool and
# the holder could not get one to record its event.
_LOCAL: dict[tuple[str, str], threading.Lock] = {}


@contextmanager
def champion_lock(settings: Settings) -> Iterator[Session]:
    """Hold the champion lock of ``settings.model_name``; yield the store session to record in.

    The session commits (the event rows) before the lock is released, so the next holder
    sees this change in both the registry and the store.
    """
    local = _LOCAL.setdefault(
        (settings.resolved_database_url, settings.model_name), threading.Lock()
    )
    with local, _store_lock(settings) as session:
        yield session


@contextmanager
def _store_lock(settings: Settings) -> Iterator[Session]:
    """Hold the store's lock (advisory or file) and yield a session committed inside it."""
    import sqlalchemy as sa

    from churnops.store import get_engine, session_scope

    url = get_engine(settings).url
    if url.get_backend_name() == "postgresql":
        with session_scope(settings) as session:
            session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _key(settings)})
            yield session
        return
    with _file_lock(_lock_file(settings, url.database)), session_scope(settings) as session:
        yield session


def _key(settings: Settings) -> int:
    """Return the model's advisory-lock key: a signed 64-bit number from its name.

    Only the name: every host must compute the same key, whatever it calls the database.
    """
    digest = hashlib.sha256(f"churnops.champion:{settings.model_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _lock_file(settings: Settings, database: str | None) -> Path:
    """Return the lock file beside the SQLite file (under home for an in-memory store)."""
    if database and database != ":memory:":
        store = Path(database)
        return store.with_name(f"{store.name}.champion.lock")
    return settings.ensure_home() / "champion.lock"


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``; closing the file (or dying) releases it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
