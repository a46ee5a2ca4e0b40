"""Batch fixtures: a store per test on real SQLite or a private PostgreSQL schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
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
