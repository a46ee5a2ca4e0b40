"""Reading sources: CSV, Parquet and SQL tables, with clear errors."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from churnops.data.sources import read_table, write_table
from churnops.errors import DataSourceError
from tests.factories import make_customers


def test_csv_and_parquet_round_trip(tmp_path) -> None:
    """A table written as CSV or Parquet reads back with the same values."""
    df = make_customers(50)
    for name in ("t.csv", "t.parquet"):
        back = read_table(write_table(df, tmp_path / name))
        pd.testing.assert_frame_equal(back, df, check_dtype=False)


def test_sql_table(tmp_path) -> None:
    """A table in a SQL database reads with --db and --table."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    make_customers(40).to_sql("customers", sa.create_engine(url), index=False)
    assert len(read_table(db=url, table="customers")) == 40
    with pytest.raises(DataSourceError, match="not found"):
        read_table(db=url, table="nope")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"path": "missing.csv"}, "not found"),
        ({"path": "README.md"}, "Unknown data format"),
        ({"db": "sqlite://"}, "both --db"),
        ({}, "Give a data file"),
    ],
)
def test_bad_sources(args, message) -> None:
    """Unreadable sources raise DataSourceError with a clear message."""
    with pytest.raises(DataSourceError, match=message):
        read_table(**args)
