"""The retention dashboard's reads: a date's risk list, filtered, sorted and paged in SQL.

The dashboard has no SQL of its own; it calls these stage functions. Each reads the run a
date points to (``scoring_dates`` → ``scoring_runs`` → ``run_scores``) directly by its
key, never through the ``churn_scores`` view, so "the top 50 of a date" is a primary-key
range read on both backends. Segment filters are integer arithmetic on the stored
segment code (:class:`churnops.features.segments.SegmentKey`), a customer search is an
exact prefix (``substr``: ``LIKE`` ignores case on SQLite), and every query is bounded.

A run's rows never change once its date points to it, so a filter's totals (one scan of
the run) are kept per run id in a small in-process cache: the overview and the page of one
filter, and every further page of it, pay for that scan once.

Imports stay light (SQLAlchemy, no pandas, mlflow or scikit-learn): a dashboard process
reads the store without loading the scoring stack.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from churnops.batch.keys import bucket_of, customer_key, ranks_in
from churnops.batch.report import reason_text
from churnops.config import Settings
from churnops.errors import ConfigError, DataError
from churnops.features.segments import SegmentKey

if TYPE_CHECKING:
    import numpy as np

Order = Literal["risk", "value", "expected_loss"]
ORDERS = ("risk", "value", "expected_loss")
MAX_PAGE_ROWS = 1_000
MAX_DATES = 3_660  # ten years of daily runs
EXPORT_BATCH = 5_000
NO_SCORES = "No scores yet: run `churnops score SOURCE` first."


@dataclass(frozen=True)
class RiskFilter:
    """Which customers of a date's run the dashboard lists, and in which order."""

    segments: Mapping[str, str] = field(default_factory=dict)  # column -> level, as displayed
    search: str | None = None  # customer id prefix (exact prefix match)
    above_threshold: bool = True  # only customers at or above the run's threshold
    order: Order = "risk"  # value/expected_loss need a value column


@dataclass(frozen=True)
class _Run:
    """The run a scoring date shows, with what its rows need to be read."""

    day: date
    id: int
    started_at: datetime  # with the id, names the run even in a store re-created at one URL
    model_name: str
    model_version: str
    threshold: float
    key: SegmentKey
    value_column: str | None


def _tables() -> tuple[sa.Table, sa.Table, sa.Table]:
    from churnops.store.tables import RunScore, ScoringDate, ScoringRun

    return RunScore.__table__, ScoringDate.__table__, ScoringRun.__table__  # type: ignore[return-value]


def _engine(settings: Settings) -> sa.Engine:
    from churnops.store import get_engine

    return get_engine(settings)


def scoring_dates(settings: Settings) -> list[date]:
    """Return the dates that have scores, newest first."""
    _, dates, _ = _tables()
    query = sa.select(dates.c.scoring_date).order_by(dates.c.scoring_date.desc()).limit(MAX_DATES)
    with _engine(settings).connect() as conn:
        return list(conn.execute(query).scalars())


def _run(conn: sa.Connection, day: date | None) -> _Run:
    """Return the run ``day`` shows (the latest date when None), or a DataError saying why not."""
    _, dates, runs = _tables()
    query = (
        sa.select(
            dates.c.scoring_date,
            runs.c.id,
            runs.c.started_at,
            runs.c.model_name,
            runs.c.model_version,
            runs.c.threshold,
            runs.c.segments,
            runs.c.value_column,
        )
        .join(runs, runs.c.id == dates.c.run_id)
        .order_by(dates.c.scoring_date.desc())
        .limit(1)
    )
    if day is not None:
        query = query.where(dates.c.scoring_date == day)
    row = conn.execute(query).first()
    if row is None:
        if day is None:
            raise DataError(NO_SCORES)
        known = conn.execute(
            sa.select(dates.c.scoring_date).order_by(dates.c.scoring_date.desc()).limit(10)
        ).scalars()
        shown = ", ".join(d.isoformat() for d in known)
        if not shown:
            raise DataError(NO_SCORES)
        raise DataError(
            f"No scores for {day.isoformat()}; scored dates (newest first): {shown}.",
            {"scoring_date": day.isoformat()},
        )
    return _Run(
        day=row.scoring_date,
        id=int(row.id),
        started_at=row.started_at,
        model_name=row.model_name,
        model_version=row.model_version,
        threshold=float(row.threshold),
        key=SegmentKey.from_json(row.segments),
        value_column=row.value_column,
    )


def _matching(run: _Run, flt: RiskFilter) -> list[Any]:
    """Return the conditions of a filter's segments and search (not the threshold)."""
    scores, _, _ = _tables()
    conditions = [scores.c.run_id == run.id, *run.key.condition(scores.c.segment, flt.segments)]
    if flt.search:
        prefix = sa.func.substr(scores.c.customer_id, 1, len(flt.search))
        conditions.append(prefix == flt.search)
    return conditions


def _selected(run: _Run, flt: RiskFilter) -> list[Any]:
    """Return the conditions of the whole filter."""
    scores, _, _ = _tables()
    above = [scores.c.score >= run.threshold] if flt.above_threshold else []
    return [*_matching(run, flt), *above]


def _ordering(run: _Run, flt: RiskFilter) -> list[Any]:
    """Return the ORDER BY of a filter: rank (the primary key), value or expected loss."""
    scores, _, _ = _tables()
    if flt.order not in ORDERS:
        raise ConfigError(f"Unknown order {flt.order!r}; choose from: {', '.join(ORDERS)}.")
    if flt.order == "risk":
        return [scores.c.risk_rank]
    if run.value_column is None:
        raise DataError(
            f"Sorting by {flt.order.replace('_', ' ')} needs customer values, and the run of "
            f"{run.day.isoformat()} stored none: set customer_value_column and score again.",
            {"order": flt.order},
        )
    key = scores.c.value if flt.order == "value" else scores.c.score * scores.c.value
    return [sa.nulls_last(key.desc()), scores.c.risk_rank]


class _Totals:
    """A small LRU of each filter's totals, by store, run and filter (a run never changes)."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.kept: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()

    def get(self, conn: sa.Connection, run: _Run, flt: RiskFilter) -> dict[str, Any]:
        """Return the filter's counts and sums over the run, scanning it on a miss."""
        segments = tuple(sorted(flt.segments.items()))
        wanted = (str(conn.engine.url), run.id, run.started_at, segments, flt.search)
        with self.lock:
            if wanted in self.kept:
                self.kept.move_to_end(wanted)
                return self.kept[wanted]
        totals = _scan(conn, run, flt)
        with self.lock:
            self.kept[wanted] = totals
            while len(self.kept) > self.size:
                self.kept.popitem(last=False)
        return totals


_TOTALS = _Totals()


def _scan(conn: sa.Connection, run: _Run, flt: RiskFilter) -> dict[str, Any]:
    """Count and sum the rows matching a filter's segments and search, in one pass."""
    scores, _, _ = _tables()
    above = sa.case((scores.c.score >= run.threshold, 1), else_=0)
    query = sa.select(
        sa.func.count(),
        sa.func.sum(above),
        sa.func.sum(scores.c.score),
        sa.func.sum(scores.c.score * scores.c.value),
    ).where(*_matching(run, flt))
    scored, above_threshold, expected, at_risk = conn.execute(query).one()
    return {
        "scored": int(scored),
        "above_threshold": int(above_threshold or 0),
        "expected_churners": float(expected or 0.0),
        "revenue_at_risk": None if run.value_column is None else float(at_risk or 0.0),
    }


def risk_overview(
    settings: Settings, day: date | None = None, flt: RiskFilter = RiskFilter()
) -> dict[str, Any]:
    """Return a date's headline numbers under a filter's segments and search.

    ``scored`` ignores ``above_threshold`` (the KPIs compare the two);
    ``expected_churners`` is the sum of the scores (calibrated probabilities), and
    ``revenue_at_risk`` the sum of score x value (None without a value column).
    """
    with _engine(settings).connect() as conn:
        run = _run(conn, day)
        totals = _TOTALS.get(conn, run, flt)
    return {
        "scoring_date": run.day.isoformat(),
        "run_id": run.id,
        "model_name": run.model_name,
        "model_version": run.model_version,
        "threshold": run.threshold,
        **totals,
        "value_column": run.value_column,
        "segments": run.key.levels(),
        "segment_warnings": list(run.key.warnings),
    }


def _query(run: _Run, flt: RiskFilter) -> sa.Select[Any]:
    scores, _, _ = _tables()
    return (
        sa.select(
            scores.c.risk_rank,
            scores.c.customer_id,
            scores.c.score,
            scores.c.value,
            scores.c.segment,
            scores.c.reasons,
        )
        .where(*_selected(run, flt))
        .order_by(*_ordering(run, flt))
    )


def _row(run: _Run, row: sa.Row[Any]) -> dict[str, Any]:
    """Return one listed customer as the dashboard shows it."""
    reasons = json.loads(row.reasons) if row.reasons else []
    return {
        "risk_rank": int(row.risk_rank),
        "customer_id": row.customer_id,
        "score": float(row.score),
        "high_risk": row.score >= run.threshold,
        "value": row.value,
        "segments": run.key.decode(row.segment),
        "reasons": reasons,
        "reason_text": reason_text(reasons),
    }


def risk_page(
    settings: Settings, day: date | None, flt: RiskFilter, offset: int = 0, limit: int = 50
) -> dict[str, Any]:
    """Return one page of a date's filtered list: ``total`` matching rows and the ``rows``.

    "risk" pages read the primary key in rank order and stop after the page; "value" and
    "expected_loss" let the database sort (a top-N sort, not the whole run).
    """
    if not 1 <= limit <= MAX_PAGE_ROWS or offset < 0:
        raise ConfigError(
            f"A page holds 1 to {MAX_PAGE_ROWS:,} rows from offset 0 on; "
            f"got limit {limit}, offset {offset}."
        )
    with _engine(settings).connect() as conn:
        run = _run(conn, day)
        query = _query(run, flt).limit(limit).offset(offset)
        rows = [_row(run, r) for r in conn.execute(query)]
        totals = _TOTALS.get(conn, run, flt)
    return {"total": totals["above_threshold" if flt.above_threshold else "scored"], "rows": rows}


def risk_export(
    settings: Settings, day: date | None, flt: RiskFilter, limit: int = 1_000_000
) -> Iterator[dict[str, Any]]:
    """Yield every row of a date's filtered list (up to ``limit``), as :func:`risk_page` does.

    Streamed: PostgreSQL sends the rows through a server-side cursor in batches and the
    SQLite cursor steps through them, so memory stays at one batch whatever the list.
    """
    if limit < 1:
        raise ConfigError(f"An export holds at least 1 row; got limit {limit}.")
    with _engine(settings).connect() as conn:
        run = _run(conn, day)
        query = _query(run, flt).limit(limit)
        result = conn.execution_options(stream_results=True, yield_per=EXPORT_BATCH).execute(query)
        for row in result:
            yield _row(run, row)


def export_csv(rows: Iterable[dict[str, Any]], segment_columns: list[str]) -> Iterator[str]:
    """Yield CSV lines (the header first) of listed rows: reasons as sentences for people."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def line(cells: list[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(cells)
        return buffer.getvalue()

    yield line(
        ["risk_rank", "customer_id", "score", "high_risk", "value", *segment_columns, "reasons"]
    )
    for row in rows:
        segments = row["segments"]
        yield line(
            [
                row["risk_rank"],
                row["customer_id"],
                repr(row["score"]),
                "true" if row["high_risk"] else "false",
                "" if row["value"] is None else repr(row["value"]),
                *(segments.get(c, "") for c in segment_columns),
                row["reason_text"],
            ]
        )


def customer_history(settings: Settings, customer_id: str) -> list[dict[str, Any]]:
    """Return a customer's score on every scoring date that has them, newest first.

    ``[]`` when the customer was never scored (or the id is unknown). Each shown run is
    searched through its customer-key block (:mod:`churnops.batch.keys`): two small reads
    and one primary-key read, whatever the size of the runs.
    """
    from churnops.store.tables import CustomerKeys

    scores, dates, runs = _tables()
    blocks = CustomerKeys.__table__
    key = customer_key(customer_id)
    with _engine(settings).connect() as conn:
        shown = conn.execute(
            sa.select(
                dates.c.scoring_date,
                runs.c.id,
                runs.c.threshold,
                runs.c.model_version,
                runs.c.segments,
            )
            .join(runs, runs.c.id == dates.c.run_id)
            .order_by(dates.c.scoring_date.desc())
            .limit(MAX_DATES)
        ).all()
        found = conn.execute(
            sa.select(blocks.c.run_id, blocks.c.block).where(
                blocks.c.bucket == bucket_of(key), blocks.c.run_id.in_([r.id for r in shown])
            )
        ).all()
        wanted = [(run_id, rank) for run_id, block in found for rank in ranks_in(block, key)]
        rows = {}
        if wanted:  # primary-key reads (SQLite scans for a row-value IN); the id settles
            at = [(scores.c.run_id == r) & (scores.c.risk_rank == k) for r, k in wanted]
            query = sa.select(scores).where(sa.or_(*at), scores.c.customer_id == customer_id)
            rows = {row.run_id: row for row in conn.execute(query)}
    history = []
    for run in shown:
        row = rows.get(run.id)
        if row is not None:
            history.append(
                {
                    "scoring_date": run.scoring_date.isoformat(),
                    "run_id": int(run.id),
                    "score": float(row.score),
                    "risk_rank": int(row.risk_rank),
                    "high_risk": row.score >= run.threshold,
                    "threshold": float(run.threshold),
                    "model_version": run.model_version,
                    "reasons": json.loads(row.reasons) if row.reasons else [],
                    "segments": SegmentKey.from_json(run.segments).decode(row.segment),
                    "value": row.value,
                }
            )
    return history


def campaign_scores(
    settings: Settings, day: date | None = None
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Return a date's scores in rank order, its customer values and ids in the same order.

    A campaign is planned over the whole run, so this reads every row through one raw
    DBAPI cursor, column by column, never one SQLAlchemy row object per customer. Values
    are None without a value column; a missing value is NaN.
    """
    engine = _engine(settings)
    with engine.connect() as conn:
        run = _run(conn, day)
    values = run.value_column is not None
    read = _aggregated_columns if engine.dialect.name == "postgresql" else _fetched_columns
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            score, ids, value = read(cursor, run.id, values)
        finally:
            cursor.close()
    finally:
        raw.close()
    return score, value if values else None, ids


def _fetched_columns(
    cursor: Any, run_id: int, values: bool
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """SQLite: the run in its primary-key order, one fetch of plain tuples, split by column."""
    import numpy as np

    columns = "score, customer_id" + (", value" if values else "")
    cursor.execute(
        f"SELECT {columns} FROM run_scores WHERE run_id = {int(run_id)} ORDER BY risk_rank"
    )
    rows = cursor.fetchall()
    score = np.fromiter(map(itemgetter(0), rows), np.float64, len(rows))
    ids = list(map(itemgetter(1), rows))
    value = np.array(list(map(itemgetter(2), rows)) if values else [], np.float64)
    return score, ids, value  # a NULL value: None -> NaN


def _aggregated_columns(
    cursor: Any, run_id: int, values: bool
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """PostgreSQL: each column aggregated into one value, sent in binary, put in rank order.

    Row by row (a fetch, or COPY's one message per row) costs ~1 s per million rows in the
    driver; ``array_send`` of an aggregated array is one binary value numpy reads as is.
    Ids are joined by line breaks, which the id rule never lets into an id. No ORDER BY:
    without fresh statistics for a run just written (autovacuum lags, or is off) the
    planner sorts the whole run on disk; the ranks (1..n) put the columns in order here.
    """
    import numpy as np

    value = "array_send(array_agg(COALESCE(value, 'NaN')))" if values else "NULL"
    cursor.execute(
        "SELECT count(*), array_send(array_agg(risk_rank)), array_send(array_agg(score)), "
        f"string_agg(customer_id, E'\\n'), {value} "
        f"FROM run_scores WHERE run_id = {int(run_id)}",
        binary=True,
    )
    n, ranks, scores, ids, sent = cursor.fetchone()
    if not n:
        return np.empty(0), [], np.empty(0)
    at = _array(ranks, ">i8", n) - 1
    score = np.empty(n)
    score[at] = _array(scores, ">f8", n)
    value = np.empty(n if values else 0)
    if values:
        value[at] = _array(sent, ">f8", n)
    ordered = np.empty(n, dtype=object)
    ordered[at] = ids.split("\n")
    return score, ordered.tolist(), value


def _array(sent: bytes, dtype: str, n: int) -> np.ndarray:
    """Read PostgreSQL's binary form of a one-dimensional array without NULLs.

    A 20-byte header (dimensions, null flag, element type, length, lower bound), then per
    element its byte length (int32) and its big-endian bytes.
    """
    import numpy as np

    cells = np.frombuffer(sent, dtype=[("length", ">i4"), ("value", dtype)], offset=20, count=n)
    return cells["value"].astype(dtype.replace(">", "="))
