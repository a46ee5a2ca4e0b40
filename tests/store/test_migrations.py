"""Store migrations apply from empty on SQLite and PostgreSQL, and rows round-trip."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from churnops.config import Settings
from churnops.store import RegistryEvent, session_scope, upgrade
from tests.conftest import POSTGRES_URL, require_service


def test_sqlite_from_empty(tmp_path) -> None:
    """An empty SQLite file is migrated to head and has the registry_events table."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    head = upgrade(url)
    assert head
    assert "registry_events" in sa.inspect(sa.create_engine(url)).get_table_names()
    assert upgrade(url) == head  # idempotent


def test_session_scope_writes_events(tmp_path) -> None:
    """A registry event written in a session reads back."""
    settings = Settings(home=tmp_path)
    with session_scope(settings) as session:
        session.add(
            RegistryEvent(
                at=datetime.now(UTC),
                model_name="m",
                action="initial",
                to_version="1",
                reason="first",
                actor="test",
            )
        )
    with session_scope(settings) as session:
        assert session.scalars(sa.select(RegistryEvent.reason)).all() == ["first"]


@pytest.mark.integration
def test_postgres_from_empty() -> None:
    """Migrations run on a fresh PostgreSQL schema (real server, CI)."""
    require_service(POSTGRES_URL, "PostgreSQL")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"create schema {schema}"))
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    try:
        assert upgrade(url)
        tables = sa.inspect(sa.create_engine(url)).get_table_names(schema=schema)
        assert "registry_events" in tables
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"drop schema {schema} cascade"))
