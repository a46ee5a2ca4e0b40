"""Batch fixtures: a store per test on real SQLite or a private PostgreSQL schema."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from churnops.config import Settings
from tests.conftest import POSTGRES_URL, require_service
from tests.factories import make_customers


def postgres_schema_url() -> Iterator[str]:
    """Yield a URL whose search_path is a fresh schema, dropped afterwards."""
    require_service(POSTGRES_URL, "PostgreSQL")
    schema = f"batch_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty operational store on each real backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        yield from postgres_schema_url()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite store."""
    return f"sqlite:///{tmp_path / 'store.db'}"


def batch_settings(trained_home: Path, url: str, **kw: object) -> Settings:
    """Settings on the session's trained registry, a given store and small chunks."""
    return Settings(home=trained_home, database_url=url, batch_chunk_rows=100, **kw)


@pytest.fixture(scope="session")
def batch_customers() -> pd.DataFrame:
    """350 customers (4 chunks of 100), one with an id that needs escaping in COPY (tabs and
    newlines are control characters, which the id rule refuses)."""
    df = make_customers(350, seed=7)
    df.loc[5, "customer_id"] = 'odd "id"\\with,specials|é'
    return df


@pytest.fixture
def customers_file(tmp_path: Path, batch_customers: pd.DataFrame) -> Path:
    """The batch customers as Parquet."""
    path = tmp_path / "customers.parquet"
    batch_customers.to_parquet(path, index=False)
    return path


def read_scores(url: str, day: str) -> pd.DataFrame:
    """Return a date's rows of churn_scores, by rank."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return pd.read_sql(
                sa.text("SELECT * FROM churn_scores WHERE scoring_date = :d ORDER BY risk_rank"),
                conn,
                params={"d": day},
            )
    finally:
        engine.dispose()


PAUSE_MARKER = "churnops-batch-pause: "


def start_scoring(
    home: Path, url: str, source: Path, day: date, point: str, seconds: float = 60
) -> subprocess.Popen[str]:
    """Start ``churnops score`` in a real process that pauses ``seconds`` at ``point``."""
    env = {
        **os.environ,
        "CHURNOPS_HOME": str(home),
        "CHURNOPS_DATABASE_URL": url,
        "CHURNOPS_BATCH_CHUNK_ROWS": "100",
        "CHURNOPS_BATCH_TEST_PAUSE_AT": point,
        "CHURNOPS_BATCH_TEST_PAUSE": str(seconds),
    }
    code = "from churnops.cli import main; main()"
    argv = [sys.executable, "-c", code, "score", str(source), "--date", day.isoformat(), "--json"]
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for(proc: subprocess.Popen[str], point: str, timeout: float = 120) -> None:
    """Read the child's stderr until it announces ``point`` (then it sleeps there)."""
    seen: list[str] = []

    def read() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            seen.append(line)
            if line.startswith(PAUSE_MARKER + point):
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not any(line.startswith(PAUSE_MARKER + point) for line in seen):
        proc.kill()
        pytest.fail(f"scoring never reached {point!r}; stderr:\n{''.join(seen)[-2000:]}")
