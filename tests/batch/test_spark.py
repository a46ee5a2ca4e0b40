"""The Spark engine scores like the pandas engine (one local Spark session: ~10 s)."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from churnops.batch import score
from tests.batch.conftest import batch_settings, read_scores

pytestmark = pytest.mark.integration


def test_spark_scores_equal_pandas_scores_and_reject_the_same_rows(
    trained_home: Path, sqlite_url: str, tmp_path: Path, batch_customers: pd.DataFrame
) -> None:
    """On a small sample, Spark and pandas agree to 1e-9, flag alike and reject alike, and
    store the same segments and customer values."""
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java")
    df = batch_customers.head(200).copy()
    df.loc[7, "contract"] = "Lifetime"
    path = tmp_path / "sample.parquet"
    df.to_parquet(path, index=False)
    settings = batch_settings(trained_home, sqlite_url, customer_value_column="monthly_charges")

    on_pandas = score(settings, path, scoring_date=date(2026, 3, 1))
    on_spark = score(
        settings, path, scoring_date=date(2026, 3, 2), engine="spark", spark_master="local[1]"
    )

    assert on_spark["engine"] == "spark"
    for key in ("rows_in", "rows_scored", "rows_rejected", "high_risk"):
        assert on_spark[key] == on_pandas[key], key
    assert on_spark["rows_rejected"] == 1
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        rejected = conn.execute(
            sa.text("SELECT run_id, row_number, customer_id FROM rejected_rows ORDER BY run_id")
        ).all()
    engine.dispose()
    expected = (7, df.loc[7, "customer_id"])  # the file position, as the pandas engine says
    assert [tuple(r[1:]) for r in rejected] == [expected, expected]
    a = read_scores(sqlite_url, "2026-03-01").set_index("customer_id").sort_index()
    b = read_scores(sqlite_url, "2026-03-02").set_index("customer_id").sort_index()
    assert list(a.index) == list(b.index)
    np.testing.assert_allclose(b["score"], a["score"], rtol=0, atol=1e-9)
    assert (a["high_risk"] == b["high_risk"]).all()
    assert (a["risk_rank"] == b["risk_rank"]).all()
    assert a["reasons"].notna().any()
    assert (a["reasons"].fillna("-") == b["reasons"].fillna("-")).all()  # the same top k
    assert a["segment"].notna().all()
    assert (a["segment"] == b["segment"]).all()
    np.testing.assert_array_equal(b["value"], a["value"])
    np.testing.assert_array_equal(
        a["value"], df.set_index("customer_id").loc[a.index, "monthly_charges"]
    )
