"""The operational store: one engine per URL, migrated to the latest schema on first use."""

from __future__ import annotations

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


@lru_cache(maxsize=8)
def _engine(url: str) -> sa.Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    upgrade(url)
    return sa.create_engine(url, pool_pre_ping=True)


def get_engine(settings: Settings) -> sa.Engine:
    """Return the engine for the configured store, migrating it on first use."""
    return _engine(settings.resolved_database_url)


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """Yield a session that commits on success and rolls back on error."""
    factory = sessionmaker(get_engine(settings), expire_on_commit=False)
    with factory.begin() as session:
        yield session
