"""Store migrations apply to an empty SQLite file and an empty PostgreSQL schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from churnops.cli import app
from churnops.config import Settings
from churnops.store import Base, RegistryEvent, session_scope, upgrade
from tests.batch.conftest import postgres_schema_url

HEAD = "0004_batch"


def _check(url: str) -> None:
    assert upgrade(url) == HEAD
    assert upgrade(url) == HEAD  # a second upgrade is a no-op
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        # Every table the ORM knows was created by the migrations (they cannot drift apart).
        assert set(Base.metadata.tables) <= set(inspector.get_table_names())
        unique = inspector.get_unique_constraints("churn_scores")
        assert {"scoring_date", "customer_id"} in [set(u["column_names"]) for u in unique]
        columns = {c["name"] for c in inspector.get_columns("churn_scores")}
        assert {"score", "high_risk", "risk_rank", "reasons", "run_id", "threshold"} <= columns
    engine.dispose()


def test_migrates_an_empty_sqlite_database(tmp_path: Path) -> None:
    """It creates every table in a new SQLite file."""
    _check(f"sqlite:///{tmp_path / 'empty.db'}")


@pytest.mark.integration
def test_migrates_an_empty_postgres_schema() -> None:
    """It creates every table in an empty PostgreSQL schema."""
    for url in postgres_schema_url():
        _check(url)


def test_session_scope_writes_events(tmp_path: Path) -> None:
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


def test_db_upgrade_command_reports_the_revision() -> None:
    """`churnops db upgrade --json` migrates the configured store and prints its revision."""
    result = CliRunner().invoke(app, ["db", "upgrade", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["revision"] == HEAD
    assert payload["database"].startswith("sqlite:///")
