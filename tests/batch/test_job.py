"""Batch scoring on real SQLite and PostgreSQL: contents, idempotency, rejections."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from churnops import registry
from churnops.batch import high_risk, score
from churnops.errors import DataSourceError, DataValidationError
from tests.batch.conftest import batch_settings, read_scores

pytestmark = pytest.mark.integration
DAY = date(2026, 3, 1)


def test_scores_every_customer_once_ranked_with_the_champions_probabilities(
    trained_home: Path, store_url: str, customers_file: Path, batch_customers: pd.DataFrame
) -> None:
    """It writes one row per customer, ranks the run as a whole, and matches predict_frame."""
    settings = batch_settings(trained_home, store_url, reasons_top=20)
    run = score(settings, customers_file, scoring_date=DAY)

    assert run["status"] == "succeeded"
    assert (run["rows_in"], run["rows_scored"], run["rows_rejected"]) == (350, 350, 0)
    assert run["heartbeat_at"] >= run["started_at"]  # beat at least before the swap
    rows = read_scores(store_url, DAY.isoformat())
    assert len(rows) == 350
    assert rows["risk_rank"].tolist() == list(range(1, 351))
    assert rows["score"].is_monotonic_decreasing
    assert set(rows["run_id"]) == {run["id"]}
    assert 'odd "id"\\with,specials|é' in set(rows["customer_id"])  # survives COPY escaping

    model = registry.load_model(settings).model
    expected = model.predict_frame(batch_customers).set_index("customer_id")["probability"]
    got = rows.set_index("customer_id")["score"]
    np.testing.assert_allclose(got.loc[expected.index], expected, rtol=0, atol=1e-12)
    assert rows["high_risk"].astype(bool).sum() == run["high_risk"] > 0
    assert (rows["high_risk"].astype(bool) == (rows["score"] >= model.threshold)).all()

    top = rows.head(min(20, run["high_risk"]))
    assert top["reasons"].notna().all()  # the riskiest always carry reasons
    assert rows["reasons"].iloc[len(top) :].isna().all()  # and only they do (reasons_top)
    reasons = json.loads(top["reasons"].iloc[0])
    assert len(reasons) == 3
    assert {"feature", "contribution"} <= set(reasons[0])


def test_rerunning_a_date_replaces_it_and_leaves_other_dates(
    trained_home: Path, store_url: str, customers_file: Path
) -> None:
    """It replaces a re-scored date instead of duplicating it; other dates stay."""
    settings = batch_settings(trained_home, store_url)
    other = score(settings, customers_file, scoring_date=date(2026, 2, 28))
    first = score(settings, customers_file, scoring_date=DAY)
    second = score(settings, customers_file, scoring_date=DAY)

    rows = read_scores(store_url, DAY.isoformat())
    assert len(rows) == 350
    assert set(rows["run_id"]) == {second["id"]} != {first["id"]}
    assert rows["customer_id"].is_unique
    kept = read_scores(store_url, "2026-02-28")
    assert len(kept) == 350
    assert set(kept["run_id"]) == {other["id"]}
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:  # the replaced run's rows are gone, not just hidden
        stored = conn.execute(sa.text("SELECT run_id, count(*) FROM run_scores GROUP BY run_id"))
        assert dict(stored.all()) == {other["id"]: 350, second["id"]: 350}
    engine.dispose()


def test_ids_repeated_across_chunks_fail_the_run_and_keep_the_date(
    trained_home: Path, sqlite_url: str, tmp_path: Path, batch_customers: pd.DataFrame
) -> None:
    """The same customer in two chunks fails the run with the ids; the date keeps its run."""
    settings = batch_settings(trained_home, sqlite_url)
    source = tmp_path / "dup.parquet"
    batch_customers.to_parquet(source, index=False)
    before = score(settings, source, scoring_date=DAY)
    dup = batch_customers.copy()
    dup.loc[250, "customer_id"] = dup.loc[3, "customer_id"]  # chunk 3 repeats chunk 1
    dup.to_parquet(source, index=False)
    with pytest.raises(DataValidationError, match="repeat") as info:
        score(settings, source, scoring_date=DAY)
    assert info.value.details["duplicate_ids"] == [dup.loc[3, "customer_id"]]
    assert set(read_scores(sqlite_url, DAY.isoformat())["run_id"]) == {before["id"]}


def test_invalid_rows_are_rejected_with_reasons_and_the_rest_scored(
    trained_home: Path, store_url: str, tmp_path: Path, batch_customers: pd.DataFrame
) -> None:
    """It records each invalid row with its reason and scores the others."""
    df = batch_customers.copy().astype({"tenure": object})
    df.loc[10, "contract"] = "Lifetime"
    df.loc[150, "tenure"] = "forever"
    df.loc[260, "customer_id"] = None
    path = tmp_path / "dirty.csv"
    df.to_csv(path, index=False)
    settings = batch_settings(trained_home, store_url)

    run = score(settings, path, scoring_date=DAY)

    assert (run["status"], run["rows_scored"], run["rows_rejected"]) == ("succeeded", 347, 3)
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        rejected = pd.read_sql(sa.text("SELECT * FROM rejected_rows ORDER BY row_number"), conn)
    engine.dispose()
    assert rejected["row_number"].tolist() == [10, 150, 260]
    assert set(rejected["run_id"]) == {run["id"]}
    assert "contract" in rejected["reason"][0]
    assert "tenure" in rejected["reason"][1]
    assert rejected["customer_id"][0] == df.loc[10, "customer_id"]
    assert rejected["customer_id"].isna()[2]
    assert len(read_scores(store_url, DAY.isoformat())) == 347


def test_parquet_ids_missing_or_repeated_in_a_chunk_are_rejected(
    trained_home: Path, sqlite_url: str, tmp_path: Path, batch_customers: pd.DataFrame
) -> None:
    """Parquet ids (read as Arrow strings): a missing id and both rows of a repeated one."""
    df = batch_customers.copy()
    df.loc[20, "customer_id"] = None
    df.loc[31, "customer_id"] = df.loc[30, "customer_id"]  # same chunk of 100
    df.loc[40, "contract"] = "Lifetime"
    path = tmp_path / "dirty.parquet"
    df.to_parquet(path, index=False)

    run = score(batch_settings(trained_home, sqlite_url), path, scoring_date=DAY)

    assert (run["rows_scored"], run["rows_rejected"]) == (346, 4)
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        rejected = pd.read_sql(sa.text("SELECT * FROM rejected_rows ORDER BY row_number"), conn)
    engine.dispose()
    assert rejected["row_number"].tolist() == [20, 30, 31, 40]
    assert rejected["customer_id"].isna().tolist() == [True, False, False, False]
    assert rejected["customer_id"][1] == rejected["customer_id"][2] == df.loc[30, "customer_id"]
    assert "share an id" in rejected["reason"][1]
    scored = read_scores(sqlite_url, DAY.isoformat())
    assert df.loc[30, "customer_id"] not in set(scored["customer_id"])
    assert scored["customer_id"].is_unique


def test_too_many_rejected_rows_fail_the_run_and_keep_the_previous_scores(
    trained_home: Path,
    sqlite_url: str,
    tmp_path: Path,
    customers_file: Path,
    batch_customers: pd.DataFrame,
) -> None:
    """It fails above the allowed rejected share, records why, and leaves the date as it was."""
    settings = batch_settings(trained_home, sqlite_url, max_rejected_share=0.05)
    good = score(settings, customers_file, scoring_date=DAY)
    df = batch_customers.copy()
    df.loc[:59, "contract"] = "Lifetime"  # 60 of 350 rows = 17%
    path = tmp_path / "bad.parquet"
    df.to_parquet(path, index=False)

    with pytest.raises(DataValidationError, match="break the champion's data contract"):
        score(settings, path, scoring_date=DAY)

    from churnops.batch import list_runs

    failed = list_runs(settings)[0]
    assert failed["status"] == "failed"
    assert "rows" in failed["error"]
    assert failed["finished_at"]
    rows = read_scores(sqlite_url, DAY.isoformat())
    assert len(rows) == 350
    assert set(rows["run_id"]) == {good["id"]}


def test_scores_a_sql_table_source(
    trained_home: Path, sqlite_url: str, tmp_path: Path, batch_customers: pd.DataFrame
) -> None:
    """It reads customers from a database table in chunks."""
    source = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = sa.create_engine(source)
    batch_customers.to_sql("customers", engine, index=False)
    engine.dispose()
    settings = batch_settings(trained_home, sqlite_url)

    run = score(settings, db=source, table="customers", scoring_date=DAY)

    assert run["rows_scored"] == 350
    assert run["source"].endswith("#customers")
    assert len(run["source_digest"]) == 16
    with pytest.raises(DataSourceError, match="not found"):
        score(settings, db=source, table="nope", scoring_date=DAY)


def test_high_risk_report_lists_the_riskiest_first_with_reasons(
    trained_home: Path, sqlite_url: str, customers_file: Path
) -> None:
    """It reports the latest date's high-risk customers by rank, with parsed reasons."""
    settings = batch_settings(trained_home, sqlite_url)
    score(settings, customers_file, scoring_date=date(2026, 2, 1))
    score(settings, customers_file, scoring_date=DAY)

    report = high_risk(settings, top=5)

    assert report["scoring_date"] == DAY.isoformat()
    ranks = [c["risk_rank"] for c in report["customers"]]
    assert ranks == [1, 2, 3, 4, 5]
    assert all(c["reasons"] for c in report["customers"])


def test_a_run_allocates_arrow_memory_from_jemalloc_and_restores_the_pool(
    trained_home: Path, sqlite_url: str, customers_file: Path
) -> None:
    """During a run Arrow's default pool is jemalloc (flat peak memory); after, as before."""
    before = pa.default_memory_pool().backend_name
    seen: set[str] = set()

    def progress(task: str, done: int, total: int) -> None:
        seen.add(pa.default_memory_pool().backend_name)

    score(batch_settings(trained_home, sqlite_url), customers_file, progress=progress)

    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        pytest.skip("this pyarrow build has no jemalloc")
    assert seen == {"jemalloc"}
    assert pa.default_memory_pool().backend_name == before
