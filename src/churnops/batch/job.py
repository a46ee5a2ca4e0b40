"""The batch scoring stage: source -> chunks -> validate + score -> rank -> swap the date.

Every run leaves a ``scoring_runs`` row, opened before any work and closed with the
outcome; :mod:`churnops.batch.runs` owns those rows (and the sweep of dead runs), this
module only says when.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from churnops.batch import runs
from churnops.batch.chunk import (
    ChunkResult,
    RowExtras,
    TopCandidates,
    encode_buffer,
    score_chunk,
)
from churnops.batch.memory import arrow_pool_for_batches
from churnops.batch.prefetch import ahead
from churnops.batch.ranking import RunRanker
from churnops.batch.sources import ChunkedSource, open_source
from churnops.batch.writer import PausePoint, make_writer, pause
from churnops.config import Settings
from churnops.errors import ChurnopsError, ConfigError, DataValidationError

log = logging.getLogger("churnops.batch")
Engine = Literal["pandas", "spark"]
ENGINES = ("pandas", "spark")
ProgressFn = Callable[[str, int, int], None]
DUPLICATE_IDS = (
    "Customer ids repeat in the source (across chunks), so the run cannot give each "
    "customer one score for the date; de-duplicate the source and re-run."
)


def score(
    settings: Settings,
    source: str | Path | None = None,
    *,
    db: str | None = None,
    table: str | None = None,
    scoring_date: date | None = None,
    engine: Engine = "pandas",
    spark_master: str | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Score every customer of a source with the champion into ``churn_scores`` for a date.

    Invalid rows go to ``rejected_rows`` and the run goes on, unless more than
    ``settings.max_rejected_share`` of the rows are invalid. Each score is stored with
    the customer's segment code and value (see :class:`RowExtras`). Returns the
    ``scoring_runs`` row of the run as a dict, with ``warnings`` about segment and value
    columns that were skipped.

    Args:
        settings: where the registry and the store are.
        source: a CSV or Parquet file (or use ``db`` and ``table``).
        db: SQLAlchemy URL of a database to read ``table`` from.
        table: the table holding the customers.
        scoring_date: the date the scores are for; today (UTC) when omitted.
        engine: ``pandas`` (chunked, in process) or ``spark``.
        spark_master: Spark master URL; ``settings.spark_master`` when omitted.
        progress: ``progress(task, done, total)`` callback for a progress bar.
    """
    from churnops import registry
    from churnops.store import get_engine

    if engine not in ENGINES:
        raise ConfigError(f"Unknown engine {engine!r}; choose from: {', '.join(ENGINES)}.")
    day = scoring_date or datetime.now(UTC).date()
    reader = open_source(source, db=db, table=table, chunk_rows=settings.batch_chunk_rows)
    loaded = registry.load_model(settings)
    model, version = loaded.model, loaded.version
    store = get_engine(settings)
    url = settings.resolved_database_url
    stale_after = timedelta(minutes=settings.batch_stale_minutes)
    started = time.perf_counter()
    counts = {"rows_in": 0, "rows_scored": 0, "rows_rejected": 0, "high_risk": 0}
    hook = PausePoint(settings.batch_test_pause_at, settings.batch_test_pause)
    extras = RowExtras.build(
        model.contract, settings.score_segment_columns, settings.customer_value_column
    )
    for warning in extras.segments.warnings:
        log.warning(warning)
    settings.home.mkdir(parents=True, exist_ok=True)
    with runs.claim(  # one run per date: a second one is refused (RunInProgressError)
        store,
        stale_after,
        scoring_date=day,
        source=reader.label,
        engine=engine,
        model_name=version.name,
        model_version=version.version,
        threshold=float(model.threshold),
        segments=extras.segments.to_json(),
        value_column=extras.value_column,
    ) as run_id:
        try:
            with (
                runs.Heartbeat(store, run_id),
                arrow_pool_for_batches(),
                tempfile.TemporaryDirectory(prefix="scoring-run-", dir=settings.home) as scratch,
            ):
                ranker = RunRanker(Path(scratch), settings.batch_chunk_rows, extras.fields)
                candidates = TopCandidates(settings.reasons_top)
                results = _results(
                    engine, model, reader, settings, spark_master, candidates, extras
                )
                values_seen = 0
                for n, result in enumerate(results, start=1):
                    scores = result.scores
                    ranker.add(
                        pa.array(scores["customer_id"]),
                        scores["score"].to_numpy(),
                        {c: scores[c].to_numpy() for c in extras.columns},
                    )
                    if extras.value_column:
                        values_seen += int(scores["value"].notna().sum())
                    runs.record_rejected(store, run_id, result.rejected)
                    counts["rows_in"] += result.rows_in
                    counts["rows_scored"] += len(scores)
                    counts["rows_rejected"] += len(result.rejected)
                    counts["high_risk"] += int(scores["high_risk"].sum())
                    _check_rejected(counts, reader.total_rows, settings.max_rejected_share)
                    if progress is not None:
                        progress(
                            "scoring", counts["rows_in"], reader.total_rows or counts["rows_in"]
                        )
                    pause(f"chunk {n}", hook)
                _check_rejected(counts, counts["rows_in"], settings.max_rejected_share)
                if counts["rows_scored"] == 0:
                    raise DataValidationError("The source holds no row that could be scored.")
                repeated = ranker.duplicates()
                if repeated:
                    raise DataValidationError(
                        f"{DUPLICATE_IDS} Repeated ids include: {', '.join(map(repr, repeated))}.",
                        {"duplicate_ids": repeated},
                    )
                stored = _values_or_none(store, run_id, extras, values_seen)
                columns = ["risk_rank", "customer_id", "score", *stored.columns]
                top = _TopRanks(settings.reasons_top)
                with (
                    make_writer(url, hook, settings.sqlite_busy_seconds) as writer,
                    ThreadPoolExecutor(max_workers=1) as pool,
                ):
                    # The final top k are explained while the run is written (TreeSHAP and
                    # the inserts overlap); their reasons join the same transaction.
                    explained = pool.submit(candidates.explain, model)
                    previous = writer.swap(
                        run_id,
                        day,
                        top.tap(  # the next partition is sorted meanwhile
                            ahead((t.select(columns) for t in ranker.ranked()), depth=1)
                        ),
                        _written(counts, progress),
                        lambda: top.reasons(explained.result()),
                        ranker.key_blocks,
                    )
                    runs.finish(store, run_id, "succeeded", counts, started, reader.digest)
                    writer.purge(previous)  # already invisible; deleted outside the swap
        except BaseException as exc:
            if runs.status(store, run_id) == "running":  # not after a committed swap
                message = (
                    exc.message
                    if isinstance(exc, ChurnopsError)
                    else f"{type(exc).__name__}: {exc}"
                )
                runs.finish(store, run_id, "failed", counts, started, reader.digest, message)
            raise
    return runs.get_run(settings, run_id)


def _results(
    engine: str,
    model: Any,
    reader: ChunkedSource,
    settings: Settings,
    spark_master: str | None,
    candidates: TopCandidates,
    extras: RowExtras,
) -> Iterator[ChunkResult]:
    """Return the engine's chunk results, produced in a thread ahead of the consumer.

    Both engines hand the riskiest rows to ``candidates`` (explained after scoring) and
    add ``extras`` to every scored row.
    """
    if engine == "spark":
        from churnops.batch.spark import spark_results

        master = spark_master or settings.spark_master
        return ahead(spark_results(model, reader, settings, master, candidates, extras))
    return ahead(_pandas_results(model, reader, candidates, extras))


def _values_or_none(store: Any, run_id: int, extras: RowExtras, values_seen: int) -> RowExtras:
    """Return the extras to store: without ``value`` when the source gave no number in it.

    Known only once every row was read (a column absent from the source, or holding
    text); the run's record says so before its rows become visible.
    """
    if not extras.value_column or values_seen:
        return extras
    warning = (
        f"customer_value_column {extras.value_column!r} holds no numbers in the source "
        "(absent, or not numeric): no customer values stored."
    )
    log.warning(warning)
    stored = RowExtras(extras.segments.warn(warning), None)
    runs.describe(store, run_id, stored.segments.to_json(), None)
    return stored


class _TopRanks:
    """Remember the ``k`` riskiest rows of a ranked run as they stream to the writer."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.head: list[pa.Table] = []

    def tap(self, tables: Iterator[pa.Table]) -> Iterator[pa.Table]:
        """Pass ``tables`` through, keeping rank and id of the first ``k`` rows."""
        seen = 0
        for table in tables:
            if seen < self.k:
                self.head.append(table.slice(0, self.k - seen).select(["risk_rank", "customer_id"]))
            seen += table.num_rows
            yield table

    def reasons(self, explained: Mapping[str, str]) -> list[tuple[int, str]]:
        """Return (rank, reasons) of the top rows that were explained (the high-risk ones)."""
        rows = []
        for table in self.head:
            ranks, customers = (table.column(i).to_pylist() for i in range(2))
            for rank, customer in zip(ranks, customers, strict=True):
                if customer in explained:
                    rows.append((rank, explained[customer]))
        return rows


def _written(counts: dict[str, int], progress: ProgressFn | None) -> Callable[[int], None]:
    """Return a callback that advances the ``writing`` bar by the rows just written."""
    done = 0

    def written(rows: int) -> None:
        nonlocal done
        done += rows
        if progress is not None:
            progress("writing", done, counts["rows_scored"])

    return written


def _pandas_results(
    model: Any, reader: ChunkedSource, candidates: TopCandidates, extras: RowExtras
) -> Iterator[ChunkResult]:
    from churnops.scoring.fast import FastScorer

    scorer = FastScorer(model)
    buffer = encode_buffer(model, reader.chunk_rows)
    categorical = [f.name for f in model.contract.features if f.kind == "categorical"]
    for chunk in reader.chunks(categorical, ids=model.contract.id):
        yield score_chunk(scorer, chunk.frame, chunk.offset, candidates, buffer, extras)


def _check_rejected(counts: dict[str, int], total: int | None, max_share: float) -> None:
    """Fail once the rejected rows exceed the allowed share of the whole source."""
    if not total:
        return
    share = counts["rows_rejected"] / total
    if share > max_share:
        raise DataValidationError(
            f"{counts['rows_rejected']:,} of {total:,} rows ({share:.1%}) break the champion's "
            f"data contract, more than the allowed {max_share:.1%} "
            "(CHURNOPS_MAX_REJECTED_SHARE); see rejected_rows for the reasons.",
            {"rows_rejected": counts["rows_rejected"], "rows": total, "max_share": max_share},
        )
