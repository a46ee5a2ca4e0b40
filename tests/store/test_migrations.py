"""Store migrations apply to an empty SQLite file and an empty PostgreSQL schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from churnops.cli import app
from churnops.store import upgrade
from tests.batch.conftest import postgres_schema_url

pytestmark = pytest.mark.integration
BATCH_TABLES = {"scoring_runs", "churn_scores", "rejected_rows"}


def _check(url: str) -> None:
    assert upgrade(url) == "0002_batch"
    assert upgrade(url) == "0002_batch"  # a second upgrade is a no-op
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        assert BATCH_TABLES | {"registry_events"} <= set(inspector.get_table_names())
        unique = inspector.get_unique_constraints("churn_scores")
        assert {"scoring_date", "customer_id"} in [set(u["column_names"]) for u in unique]
        columns = {c["name"] for c in inspector.get_columns("churn_scores")}
        assert {"score", "high_risk", "risk_rank", "reasons", "run_id", "threshold"} <= columns
    engine.dispose()


def test_migrates_an_empty_sqlite_database(tmp_path: Path) -> None:
    """It creates every table in a new SQLite file."""
    _check(f"sqlite:///{tmp_path / 'empty.db'}")


def test_migrates_an_empty_postgres_schema() -> None:
    """It creates every table in an empty PostgreSQL schema."""
    for url in postgres_schema_url():
        _check(url)


def test_db_upgrade_command_reports_the_revision(monkeypatch: pytest.MonkeyPatch) -> None:
    """`churnops db upgrade --json` migrates the configured store and prints its revision."""
    result = CliRunner().invoke(app, ["db", "upgrade", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["revision"] == "0002_batch"
    assert payload["database"].startswith("sqlite:///")
