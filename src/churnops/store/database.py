"""The operational store: one engine per URL, migrated to the latest schema on first use.

A store already at the head revision is used as is: Alembic (and every migration script)
is imported only when there is something to migrate, so a command that just reads the
store does not pay for the migration machinery on every run.

Every SQLite connection of the store — the shared engine, migrations, the audit writer
process, the batch writer's own connection — runs in WAL mode with the same long busy
timeout (:func:`sqlite_pragmas`). SQLite has one writer at a time: with the driver's 5 s
default, any write during a batch swap longer than that (a second run, ``keys create``,
audit rows) failed with "database is locked"; now it waits for the lock instead.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from churnops.config import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_SECONDS = Settings.model_fields["sqlite_busy_seconds"].default


def sqlite_pragmas(dbapi_conn: Any, busy_seconds: float) -> None:
    """Make an SQLite connection wait ``busy_seconds`` for a write lock, in WAL mode.

    WAL lets readers (dashboard, reports, key lookups) go on while a writer holds the lock;
    the busy timeout makes writers queue for it. ``journal_mode`` is stored in the file,
    so after the first connection this pragma is a no-op.
    """
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_seconds * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
    finally:
        cursor.close()


def create_store_engine(url: str, busy_seconds: float = BUSY_SECONDS, **kw: Any) -> sa.Engine:
    """Return an engine for ``url``; on SQLite every connection gets :func:`sqlite_pragmas`."""
    engine = sa.create_engine(url, **kw)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            sqlite_pragmas(dbapi_conn, busy_seconds)

    return engine


_MIGRATING = threading.RLock()
MIGRATION_LOCK_KEY = 0x636872_6E6F7073  # "churnops": one advisory lock key for migrations


def upgrade(url: str, busy_seconds: float = BUSY_SECONDS) -> str:
    """Apply every Alembic migration to the database at ``url``; return the head revision."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["busy_seconds"] = busy_seconds
    engine = create_store_engine(url, busy_seconds, poolclass=sa.pool.NullPool)
    try:
        # Alembic's context is process-global (two threads migrating at once crash inside
        # it), and two processes migrating one PostgreSQL store at once both create
        # alembic_version: one migration at a time, per process and per PostgreSQL store.
        with _MIGRATING, engine.connect() as lock:
            if engine.dialect.name == "postgresql":
                lock.execute(sa.text("select pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            command.upgrade(config, "head")
            if engine.dialect.name == "postgresql":
                lock.execute(sa.text("select pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
        with engine.connect() as conn:
            return str(conn.execute(sa.text("select version_num from alembic_version")).scalar())
    finally:
        engine.dispose()


_REVISION = re.compile(r"""^(down_revision|revision)\b[^=]*=\s*['"]([^'"]+)['"]""", re.M)


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    """Return the head revision read from the migration files, ``None`` if not a single one.

    The files are read as text (``revision = "..."`` / ``down_revision = "..."``), not
    imported: importing them means importing Alembic. Anything unusual (several heads, a
    revision not written as a string literal) gives ``None``, and Alembic decides.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(_REVISION.findall(path.read_text()))
        if "revision" not in found:
            return None
        revisions.add(found["revision"])
        if "down_revision" in found:
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _at_head(engine: sa.Engine) -> bool:
    """Say whether the store's ``alembic_version`` is exactly the head revision."""
    head = head_revision()
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            stamped = conn.execute(sa.text("select version_num from alembic_version")).scalars()
            return set(stamped) == {head}
    except sa.exc.DBAPIError:  # no alembic_version table yet: a new store
        return False


@lru_cache(maxsize=8)
def _engine(url: str, busy_seconds: float = BUSY_SECONDS) -> sa.Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_store_engine(url, busy_seconds, pool_pre_ping=True)
    if not _at_head(engine):
        with _MIGRATING:  # threads racing on a new store: the first migrates, the rest see it
            if not _at_head(engine):
                upgrade(url, busy_seconds)
    return engine


def get_engine(settings: Settings) -> sa.Engine:
    """Return the engine for the configured store, migrating it on first use."""
    return _engine(settings.resolved_database_url, settings.sqlite_busy_seconds)


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """Yield a session that commits on success and rolls back on error."""
    factory = sessionmaker(get_engine(settings), expire_on_commit=False)
    with factory.begin() as session:
        yield session
