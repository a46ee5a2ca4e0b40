"""The dashboard's risk-list reads, checked against pandas on the same scored data.

Three dates are scored with the session's champion into SQLite and into PostgreSQL; every
query (overview, pages under filters and orders, export, CSV, history, campaign scores)
is compared with the stored rows joined to the source table in pandas.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnops.batch import risk, score
from churnops.batch.report import reason_text
from churnops.batch.risk import RiskFilter
from churnops.config import Settings
from churnops.errors import ConfigError, DataError
from churnops.features.segments import MISSING_LEVEL
from tests.batch.conftest import batch_settings, postgres_schema_url, read_scores

pytestmark = pytest.mark.integration
DAY1, DAY2, EARLY = date(2026, 3, 1), date(2026, 3, 8), date(2026, 2, 1)
SEGMENTS = ["senior_citizen", "partner", "contract", "internet_service", "payment_method"]
FILTERS = [
    RiskFilter(above_threshold=False),
    RiskFilter(),
    RiskFilter({"contract": "Month-to-month"}),
    RiskFilter({"contract": "Two year", "partner": "Yes"}, above_threshold=False),
    RiskFilter(search="T07-0001", above_threshold=False),
    RiskFilter({"internet_service": "Fiber optic"}, search="T07-000"),
]


@dataclass
class Scored:
    """A store with three scored dates and, per date, its rows joined to the source."""

    settings: Settings
    url: str
    sources: dict[date, pd.DataFrame]
    frames: dict[date, pd.DataFrame]
    runs: dict[date, dict]


def _stored(url: str, day: date, source: pd.DataFrame) -> pd.DataFrame:
    """A date's stored rows with the source's segment columns (as text) and values."""
    rows = read_scores(url, day.isoformat())
    columns = ["customer_id", *SEGMENTS, "monthly_charges"]
    joined = rows.merge(source[columns], on="customer_id", how="left", validate="1:1")
    return joined.astype({c: str for c in SEGMENTS})


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def scored(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    trained_home: Path,
    batch_customers: pd.DataFrame,
) -> Iterator[Scored]:
    """Score DAY1 (everyone), DAY2 (20 fewer, older tenures) and EARLY (odd settings)."""
    tmp = tmp_path_factory.mktemp("risk")
    if request.param == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp / 'store.db'}"])
    else:
        urls = postgres_schema_url()
    for url in urls:
        settings = batch_settings(
            trained_home, url, customer_value_column="monthly_charges", reasons_top=40
        )
        later = batch_customers.iloc[20:].assign(
            tenure=np.minimum(batch_customers["tenure"].iloc[20:] + 3, 70)
        )
        sources = {DAY1: batch_customers, DAY2: later}
        runs = {}
        for day, frame in sources.items():
            path = tmp / f"{request.param}-{day}.parquet"
            frame.to_parquet(path, index=False)
            runs[day] = score(settings, path, scoring_date=day)
        odd = settings.model_copy(
            update={
                "score_segment_columns": ["contract", "tenure", "nope"],
                "customer_value_column": "not_a_column",
            }
        )
        runs[EARLY] = score(odd, tmp / f"{request.param}-{DAY1}.parquet", scoring_date=EARLY)
        frames = {day: _stored(url, day, frame) for day, frame in sources.items()}
        yield Scored(settings, url, sources, frames, runs)


def _expected(scored: Scored, day: date, flt: RiskFilter) -> pd.DataFrame:
    """The rows a filter selects, in its order, computed in pandas."""
    frame = scored.frames[day]
    keep = np.ones(len(frame), dtype=bool)
    for column, level in flt.segments.items():
        keep &= (frame[column] == level).to_numpy()
    if flt.search:
        keep &= frame["customer_id"].str.startswith(flt.search).to_numpy()
    if flt.above_threshold:
        keep &= (frame["score"] >= frame["threshold"]).to_numpy()
    chosen = frame.loc[keep].assign(loss=lambda f: f["score"] * f["value"])
    by = {
        "risk": ["risk_rank"],
        "value": ["value", "risk_rank"],
        "expected_loss": ["loss", "risk_rank"],
    }
    ascending = [True] if flt.order == "risk" else [False, True]
    return chosen.sort_values(by[flt.order], ascending=ascending)


@pytest.mark.parametrize("flt", FILTERS)
def test_overview_counts_and_sums_match_pandas(scored: Scored, flt: RiskFilter) -> None:
    """Scored, above threshold, expected churners and revenue at risk, on both dates."""
    for day in (DAY1, DAY2):
        overview = risk.risk_overview(scored.settings, day, flt)
        everyone = _expected(scored, day, RiskFilter(flt.segments, flt.search, False))
        above = _expected(scored, day, RiskFilter(flt.segments, flt.search, True))
        assert overview["scoring_date"] == day.isoformat()
        assert overview["run_id"] == scored.runs[day]["id"]
        assert overview["scored"] == len(everyone)
        assert overview["above_threshold"] == len(above)
        assert overview["expected_churners"] == pytest.approx(everyone["score"].sum())
        loss = (everyone["score"] * everyone["monthly_charges"]).sum()
        assert overview["revenue_at_risk"] == pytest.approx(loss)
        assert overview["value_column"] == "monthly_charges"
        assert list(overview["segments"]) == SEGMENTS
        assert overview["segment_warnings"] == []
    assert risk.risk_overview(scored.settings, None, flt)["scoring_date"] == DAY2.isoformat()


def test_values_and_segments_are_the_sources(scored: Scored) -> None:
    """Each stored value is the customer's monthly_charges; each segment their levels."""
    frame = scored.frames[DAY1]
    np.testing.assert_array_equal(frame["value"], frame["monthly_charges"])
    page = risk.risk_page(scored.settings, DAY1, RiskFilter(above_threshold=False), 0, 1000)
    by_id = frame.set_index("customer_id")
    for row in page["rows"]:
        assert row["segments"] == {c: by_id.loc[row["customer_id"], c] for c in SEGMENTS}


@pytest.mark.parametrize("order", ["risk", "value", "expected_loss"])
@pytest.mark.parametrize("flt", FILTERS)
def test_pages_follow_the_filter_and_order(scored: Scored, flt: RiskFilter, order: str) -> None:
    """Pages of 7 concatenate to the pandas list; each row carries its stored fields."""
    flt = RiskFilter(flt.segments, flt.search, flt.above_threshold, order)  # type: ignore[arg-type]
    expected = _expected(scored, DAY2, flt)
    rows, offset = [], 0
    while True:
        page = risk.risk_page(scored.settings, DAY2, flt, offset, 7)
        assert page["total"] == len(expected)
        if not page["rows"]:
            break
        rows += page["rows"]
        offset += 7
    assert [r["customer_id"] for r in rows] == expected["customer_id"].tolist()
    for row, (_, want) in zip(rows, expected.iterrows(), strict=True):
        assert row["risk_rank"] == want["risk_rank"]
        assert row["score"] == want["score"]
        assert row["high_risk"] == (want["score"] >= want["threshold"])
        assert row["value"] == want["value"]
        stored = json.loads(want["reasons"]) if isinstance(want["reasons"], str) else []
        assert row["reasons"] == stored
        assert row["reason_text"] == reason_text(stored)


def test_the_riskiest_rows_carry_reasons_with_the_customers_values(scored: Scored) -> None:
    """Stored reasons name the customer's own value, and read as sentences."""
    page = risk.risk_page(scored.settings, DAY1, RiskFilter(), 0, 10)
    source = scored.sources[DAY1].set_index("customer_id")
    for row in page["rows"]:
        assert len(row["reasons"]) == 3
        for reason in row["reasons"]:
            own = source.loc[row["customer_id"], reason["feature"]]
            if isinstance(reason["value"], str):
                assert reason["value"] == own
            else:
                assert reason["value"] == pytest.approx(float(own))
        assert row["reason_text"].count(" log-odds)") == 3


def test_export_is_the_pages_concatenated_and_its_csv_reads_back(scored: Scored) -> None:
    """Streamed export rows equal the pages; the CSV has a header and one line per row."""
    flt = RiskFilter({"contract": "Month-to-month"}, above_threshold=False, order="value")
    exported = list(risk.risk_export(scored.settings, DAY1, flt))
    paged = risk.risk_page(scored.settings, DAY1, flt, 0, 1000)["rows"]
    assert exported == paged
    assert list(risk.risk_export(scored.settings, DAY1, flt, limit=5)) == paged[:5]
    lines = list(risk.export_csv(exported, SEGMENTS))
    assert len(lines) == 1 + len(exported)
    table = list(csv.DictReader(io.StringIO("".join(lines))))
    assert list(table[0]) == [
        "risk_rank",
        "customer_id",
        "score",
        "high_risk",
        "value",
        *SEGMENTS,
        "reasons",
    ]
    for line, row in zip(table, exported, strict=True):
        assert line["customer_id"] == row["customer_id"]
        assert float(line["score"]) == row["score"]
        assert float(line["value"]) == row["value"]
        assert line["high_risk"] == ("true" if row["high_risk"] else "false")
        assert line["contract"] == "Month-to-month"
        assert line["reasons"] == row["reason_text"]


def test_customer_history_covers_every_date_newest_first(
    scored: Scored, batch_customers: pd.DataFrame
) -> None:
    """A customer of both dates has two entries, one scored once has one, a stranger none."""
    both, first_only = batch_customers["customer_id"].iloc[[100, 3]]
    history = risk.customer_history(scored.settings, both)
    assert [h["scoring_date"] for h in history] == [
        DAY2.isoformat(),
        DAY1.isoformat(),
        EARLY.isoformat(),
    ]
    for entry, day in zip(history, (DAY2, DAY1), strict=False):
        stored = scored.frames[day].set_index("customer_id").loc[both]
        assert entry["run_id"] == scored.runs[day]["id"]
        assert entry["score"] == stored["score"]
        assert entry["risk_rank"] == stored["risk_rank"]
        assert entry["high_risk"] == (stored["score"] >= stored["threshold"])
        assert entry["threshold"] == stored["threshold"]
        assert entry["value"] == stored["value"]
        assert entry["segments"] == {c: stored[c] for c in SEGMENTS}
        assert entry["model_version"] == scored.runs[day]["model_version"]
    assert history[2]["value"] is None  # the EARLY run stored no values
    assert list(history[2]["segments"]) == ["contract"]
    assert [h["scoring_date"] for h in risk.customer_history(scored.settings, first_only)] == [
        DAY1.isoformat(),
        EARLY.isoformat(),
    ]
    odd = batch_customers["customer_id"].iloc[5]  # quotes, backslash, comma, pipe, é
    assert len(risk.customer_history(scored.settings, odd)) == 2  # not scored on DAY2
    assert risk.customer_history(scored.settings, "nobody") == []


def test_campaign_scores_are_the_run_in_rank_order(scored: Scored) -> None:
    """Scores, values and ids of the latest date, in rank order; no values -> None."""
    scores, values, ids = risk.campaign_scores(scored.settings)
    frame = scored.frames[DAY2]
    np.testing.assert_array_equal(scores, frame["score"].to_numpy())
    np.testing.assert_array_equal(values, frame["value"].to_numpy())
    assert ids == frame["customer_id"].tolist()
    assert (np.diff(scores) <= 0).all()
    scores, values, ids = risk.campaign_scores(scored.settings, EARLY)
    assert values is None
    assert len(scores) == len(ids) == len(scored.frames[DAY1])


def test_skipped_columns_are_warned_about_in_the_run_and_the_overview(scored: Scored) -> None:
    """A number, an unknown segment column and an absent value column: warnings, not silence."""
    run = scored.runs[EARLY]
    overview = risk.risk_overview(scored.settings, EARLY)
    assert run["segments"] == overview["segments"]
    assert list(run["segments"]) == ["contract"]
    assert run["value_column"] is None
    warnings = overview["segment_warnings"]
    assert warnings == run["warnings"]
    assert len(warnings) == 3
    assert "'tenure'" in warnings[0]
    assert "'nope'" in warnings[1]
    assert "'not_a_column' holds no numbers" in warnings[2]
    assert overview["revenue_at_risk"] is None


def test_bad_requests_get_clear_errors(scored: Scored, tmp_path: Path) -> None:
    """Unknown dates, segments, levels and orders, and pages out of range, are named."""
    s = scored.settings
    with pytest.raises(DataError, match=r"No scores for 2026-03-02; scored dates .*2026-03-08"):
        risk.risk_overview(s, date(2026, 3, 2))
    with pytest.raises(DataError, match="'region' is not a segment of this run"):
        risk.risk_page(s, DAY1, RiskFilter({"region": "North"}))
    with pytest.raises(DataError, match="has no level 'Weekly'"):
        risk.risk_overview(s, DAY1, RiskFilter({"contract": "Weekly"}))
    with pytest.raises(DataError, match="stored none: set customer_value_column"):
        risk.risk_page(s, EARLY, RiskFilter(order="expected_loss"))
    with pytest.raises(ConfigError, match="Unknown order 'age'"):
        risk.risk_page(s, DAY1, RiskFilter(order="age"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="A page holds 1 to 1,000 rows"):
        risk.risk_page(s, DAY1, RiskFilter(), 0, 5000)
    assert risk.risk_page(s, DAY1, RiskFilter({"contract": MISSING_LEVEL}))["total"] == 0
    assert risk.scoring_dates(s) == [DAY2, DAY1, EARLY]
    empty = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(DataError, match="No scores yet"):
        risk.risk_overview(empty)
    assert risk.scoring_dates(empty) == []
    assert risk.customer_history(empty, "x") == []
