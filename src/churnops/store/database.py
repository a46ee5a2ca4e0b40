"""The operational store: one engine per URL, migrated to the latest schema on first use.

A store already at the head revision is used as is: Alembic (and every migration script)
is imported only when there is something to migrate, so a command that just reads the
store does not pay for the migration machinery on every run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from churnops.config import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def upgrade(url: str) -> str:
    """Apply every Alembic migration to the database at ``url``; return the head revision."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")
    with sa.create_engine(url).connect() as conn:
        return str(conn.execute(sa.text("select version_num from alembic_version")).scalar())


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
def _engine(url: str) -> sa.Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, pool_pre_ping=True)
    if not _at_head(engine):
        upgrade(url)
    return engine


def get_engine(settings: Settings) -> sa.Engine:
    """Return the engine for the configured store, migrating it on first use."""
    return _engine(settings.resolved_database_url)


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """Yield a session that commits on success and rolls back on error."""
    factory = sessionmaker(get_engine(settings), expire_on_commit=False)
    with factory.begin() as session:
        yield session
