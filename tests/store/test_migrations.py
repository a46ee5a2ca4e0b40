"""Store migrations apply to an empty SQLite file and an empty PostgreSQL schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from churnops.cli import app
from churnops.config import Settings
from churnops.store import Base, RegistryEvent, ScoringRun, session_scope, upgrade
from tests.batch.conftest import postgres_schema_url

HEAD = "0009_honest_estimates"


def _check(url: str) -> None:
    assert upgrade(url) == HEAD
    assert upgrade(url) == HEAD  # a second upgrade is a no-op
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        # Every table the ORM knows was created by the migrations (they cannot drift apart).
        assert set(Base.metadata.tables) <= set(inspector.get_table_names())
        # Readers see churn_scores, a view: one run per date, one row per customer.
        assert "churn_scores" in inspector.get_view_names()
        columns = {c["name"] for c in inspector.get_columns("churn_scores")}
        assert {"score", "high_risk", "risk_rank", "reasons", "run_id", "threshold"} <= columns
        assert {"segment", "value"} <= columns
        assert inspector.get_pk_constraint("run_scores")["constrained_columns"] == [
            "run_id",
            "risk_rank",
        ]
        assert inspector.get_pk_constraint("scoring_dates")["constrained_columns"] == [
            "scoring_date"
        ]
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


def _alembic(url: str, action: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from churnops.store.database import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    getattr(command, action)(config, revision)


def test_scores_survive_the_move_to_the_run_pointer_and_back(tmp_path: Path) -> None:
    """0004 -> 0005 keeps a date's scores (now behind the view); downgrading restores them."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _alembic(url, "upgrade", "0004_batch")
    engine = sa.create_engine(url)
    run = {
        "id": 7,
        "started_at": "2026-01-01 00:00:00",
        "status": "succeeded",
        "scoring_date": "2026-01-01",
        "source": "x.parquet",
        "engine": "pandas",
        "model_name": "m",
        "model_version": "3",
        "threshold": 0.5,
        "rows_in": 2,
        "rows_scored": 2,
        "rows_rejected": 0,
        "high_risk": 1,
    }
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"INSERT INTO scoring_runs ({', '.join(run)}) "
                f"VALUES ({', '.join(':' + k for k in run)})"
            ),
            run,
        )
        for rank, (cid, score) in enumerate([("a", 0.9), ("b", 0.2)], start=1):
            conn.execute(
                sa.text(
                    "INSERT INTO churn_scores (customer_id, scoring_date, score, high_risk, "
                    "risk_rank, model_name, model_version, threshold, reasons, run_id) VALUES "
                    "(:c, '2026-01-01', :s, :h, :r, 'm', '3', 0.5, NULL, 7)"
                ),
                {"c": cid, "s": score, "h": score >= 0.5, "r": rank},
            )
    query = sa.text(
        "SELECT customer_id, score, high_risk, risk_rank, model_version, run_id "
        "FROM churn_scores ORDER BY risk_rank"
    )
    with engine.connect() as conn:
        before = [tuple(r) for r in conn.execute(query)]
    _alembic(url, "upgrade", "head")
    with engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(query)] == before
        assert conn.execute(sa.text("SELECT run_id FROM scoring_dates")).scalar() == 7
    _alembic(url, "downgrade", "0004_batch")
    with engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(query)] == before
    engine.dispose()


def test_head_revision_read_from_the_files_is_alembics() -> None:
    """The text scan that lets a store at head skip Alembic finds Alembic's own head."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from churnops.store.database import MIGRATIONS, head_revision

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head() == HEAD


def test_a_store_behind_head_is_migrated_on_first_use(tmp_path: Path) -> None:
    """get_engine still upgrades a store an older churnops left at an earlier revision."""
    from churnops.store import get_engine

    home = tmp_path / "home"
    home.mkdir()
    settings = Settings(home=home)
    _alembic(settings.resolved_database_url, "upgrade", "0004_batch")
    with get_engine(settings).connect() as conn:
        assert conn.execute(sa.text("select version_num from alembic_version")).scalar() == HEAD


def _race(url: str, workers: int = 6) -> None:
    """``workers`` threads take the engine of one new store at the same moment."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from churnops.store.database import _engine

    _engine.cache_clear()
    barrier = Barrier(workers)

    def take(_: int) -> str:
        barrier.wait()
        with _engine(url).connect() as conn:
            return str(conn.execute(sa.text("select version_num from alembic_version")).scalar())

    with ThreadPoolExecutor(workers) as pool:
        assert set(pool.map(take, range(workers))) == {HEAD}
    _engine.cache_clear()


def test_threads_racing_on_a_new_sqlite_store_migrate_it_once(tmp_path: Path) -> None:
    """Threads that all open a new store at once get one migrated store, no Alembic crash."""
    _race(f"sqlite:///{tmp_path / 'race.db'}")


@pytest.mark.integration
def test_threads_racing_on_a_new_postgres_store_migrate_it_once() -> None:
    """The same race on a fresh PostgreSQL schema (an advisory lock serialises migrations)."""
    for url in postgres_schema_url():
        _race(url)


def _old_store(url: str) -> None:
    """Fill a store at 0007 with one scored date: two customers, one with reasons."""
    _alembic(url, "upgrade", "0007_audit_quarantine")
    engine = sa.create_engine(url)
    run = {
        "id": 3,
        "started_at": datetime(2026, 1, 1, tzinfo=UTC),
        "status": "succeeded",
        "scoring_date": date(2026, 1, 1),
        "source": "old.parquet",
        "engine": "pandas",
        "model_name": "m",
        "model_version": "2",
        "threshold": 0.5,
        "rows_in": 2,
        "rows_scored": 2,
        "rows_rejected": 0,
        "high_risk": 1,
    }
    reasons = json.dumps([{"feature": "tenure", "contribution": 0.7}])
    with engine.begin() as conn:
        conn.execute(ScoringRun.__table__.insert(), run)  # type: ignore[attr-defined]
        conn.execute(
            sa.text(
                "INSERT INTO run_scores (run_id, risk_rank, customer_id, score, reasons) "
                "VALUES (3, 1, 'old-a', 0.9, :r), (3, 2, 'old-b', 0.2, NULL)"
            ),
            {"r": reasons},
        )
        conn.execute(
            sa.text(
                "INSERT INTO scoring_dates (scoring_date, run_id, swapped_at) VALUES (:d, 3, :t)"
            ),
            {"d": date(2026, 1, 1), "t": datetime(2026, 1, 1, tzinfo=UTC)},
        )
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store left at 0007 by an older churnops, with one scored date."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        _old_store(url)
        yield url
    else:
        for url in postgres_schema_url():
            _old_store(url)
            yield url


def test_runs_scored_before_0008_still_display_and_are_found(
    old_store: str, tmp_path: Path
) -> None:
    """0007 -> 0008 keeps old rows (no segment, no value), shows them and finds customers."""
    from churnops.batch import risk

    _alembic(old_store, "upgrade", "head")
    settings = Settings(home=tmp_path / "home", database_url=old_store)
    overview = risk.risk_overview(settings)
    assert (overview["scored"], overview["above_threshold"]) == (2, 1)
    assert overview["segments"] == {}
    assert overview["revenue_at_risk"] is None
    page = risk.risk_page(settings, None, risk.RiskFilter(above_threshold=False))
    assert [(r["customer_id"], r["segments"], r["value"]) for r in page["rows"]] == [
        ("old-a", {}, None),
        ("old-b", {}, None),
    ]
    assert page["rows"][0]["reason_text"] == "tenure (+0.70 log-odds)"  # stored without a value
    history = risk.customer_history(settings, "old-b")  # the key blocks were written
    assert [(h["scoring_date"], h["risk_rank"], h["high_risk"]) for h in history] == [
        ("2026-01-01", 2, False)
    ]
    engine = sa.create_engine(old_store)
    with engine.connect() as conn:
        view = conn.execute(sa.text("SELECT customer_id, segment, value FROM churn_scores"))
        assert sorted(tuple(r) for r in view) == [("old-a", None, None), ("old-b", None, None)]
    engine.dispose()
    _alembic(old_store, "downgrade", "0007_audit_quarantine")
    engine = sa.create_engine(old_store)
    with engine.connect() as conn:
        assert "segment" not in {c["name"] for c in sa.inspect(conn).get_columns("run_scores")}
        assert "customer_keys" not in sa.inspect(conn).get_table_names()
        rows = conn.execute(sa.text("SELECT customer_id, score FROM churn_scores ORDER BY 1"))
        assert [tuple(r) for r in rows] == [("old-a", 0.9), ("old-b", 0.2)]
    engine.dispose()
