"""The batch scoring stage: source -> chunks -> validate + score -> rank -> swap the date.

A run is recorded in ``scoring_runs`` before any work (status ``running``, with its process
id and host) and closed as ``succeeded`` or ``failed`` with the error text, so a crash
leaves a trace and the run table answers "what happened on that date" without reading
logs. A run killed before its swap commits changes nothing in ``churn_scores`` (see
:mod:`churnops.batch.writer`); the next run marks it ``abandoned`` (see :func:`sweep`).
"""

from __future__ import annotations

import os
import queue
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import pyarrow as pa
import sqlalchemy as sa

from churnops.batch.chunk import ChunkResult, TopCandidates, encode_buffer, score_chunk
from churnops.batch.ranking import RunRanker
from churnops.batch.sources import ChunkedSource, open_source
from churnops.batch.writer import PausePoint, make_writer, pause
from churnops.config import Settings
from churnops.errors import ChurnopsError, ConfigError, DataValidationError

Engine = Literal["pandas", "spark"]
ENGINES = ("pandas", "spark")
ProgressFn = Callable[[str, int, int], None]
T = TypeVar("T")
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
    ``settings.max_rejected_share`` of the rows are invalid. Returns the ``scoring_runs``
    row of the run as a dict.

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
    sweep(store, stale_after=timedelta(minutes=settings.batch_stale_minutes))
    started = time.perf_counter()
    run_id = _start_run(store, reader, day, engine, version.name, version.version, model)
    counts = {"rows_in": 0, "rows_scored": 0, "rows_rejected": 0, "high_risk": 0}
    hook = PausePoint(settings.batch_test_pause_at, settings.batch_test_pause)
    settings.home.mkdir(parents=True, exist_ok=True)
    try:
        with (
            Heartbeat(store, run_id),
            arrow_pool_for_batches(),
            tempfile.TemporaryDirectory(prefix="scoring-run-", dir=settings.home) as scratch,
        ):
            ranker = RunRanker(Path(scratch), settings.batch_chunk_rows)
            candidates = TopCandidates(settings.reasons_top)
            results = _results(engine, model, reader, settings, spark_master, candidates)
            for n, result in enumerate(results, start=1):
                scores = result.scores
                ranker.add(pa.array(scores["customer_id"]), scores["score"].to_numpy())
                _record_rejected(store, run_id, result)
                counts["rows_in"] += result.rows_in
                counts["rows_scored"] += len(scores)
                counts["rows_rejected"] += len(result.rejected)
                counts["high_risk"] += int(scores["high_risk"].sum())
                _check_rejected(counts, reader.total_rows, settings.max_rejected_share)
                if progress is not None:
                    progress("scoring", counts["rows_in"], reader.total_rows or counts["rows_in"])
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
            top = _TopRanks(settings.reasons_top)
            with (
                make_writer(settings.resolved_database_url, hook) as writer,
                ThreadPoolExecutor(max_workers=1) as pool,
            ):
                # The final top k are explained while the run is written (TreeSHAP and
                # the inserts overlap); their reasons join the same transaction.
                explained = pool.submit(candidates.explain, model)
                previous = writer.swap(
                    run_id,
                    day,
                    top.tap(_ahead(ranker.ranked(), depth=1)),  # sort the next partition meanwhile
                    _written(counts, progress),
                    lambda: top.reasons(explained.result()),
                )
                _finish_run(store, run_id, "succeeded", counts, started, reader.digest)
                writer.purge(previous)  # already invisible; deleted outside the swap
    except BaseException as exc:
        if _status(store, run_id) == "running":  # not after a committed swap
            message = (
                exc.message if isinstance(exc, ChurnopsError) else f"{type(exc).__name__}: {exc}"
            )
            _finish_run(store, run_id, "failed", counts, started, reader.digest, message)
        raise
    return get_run(settings, run_id)


def _results(
    engine: str,
    model: Any,
    reader: ChunkedSource,
    settings: Settings,
    spark_master: str | None,
    candidates: TopCandidates,
) -> Iterator[ChunkResult]:
    """Return the engine's chunk results, produced in a thread ahead of the consumer.

    Both engines hand the riskiest rows to ``candidates`` (explained after scoring).
    """
    if engine == "spark":
        from churnops.batch.spark import spark_results

        master = spark_master or settings.spark_master
        return _ahead(spark_results(model, reader, settings, master, candidates))
    return _ahead(_pandas_results(model, reader, candidates))


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


@contextmanager
def arrow_pool_for_batches() -> Iterator[None]:
    """Allocate Arrow memory from jemalloc while a run is going (then restore the pool).

    A run allocates and frees a chunk's Arrow buffers over and over. pyarrow's default
    pool (mimalloc) keeps more of the freed memory resident, and keeps more the longer the
    run: peak RSS was 675–720 MB for 1M rows and 700–740 MB for 10M. With jemalloc, whose
    decay returns idle pages to the OS, it is 662–670 MB and 660–664 MB at the same speed.
    Buffers remember their pool, so changing the default mid-process is safe. Builds of
    pyarrow without jemalloc keep their default.
    """
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:
        yield
        return
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


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
    model: Any, reader: ChunkedSource, candidates: TopCandidates
) -> Iterator[ChunkResult]:
    from churnops.scoring.fast import FastScorer

    scorer = FastScorer(model)
    buffer = encode_buffer(model, reader.chunk_rows)
    categorical = [f.name for f in model.contract.features if f.kind == "categorical"]
    for chunk in reader.chunks(categorical, ids=model.contract.id):
        yield score_chunk(scorer, chunk.frame, chunk.offset, candidates, buffer)


def _ahead(results: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Produce ``results`` in a thread, up to ``depth`` items ahead of the consumer.

    Scoring the next chunk then overlaps with spilling the current one, and sorting the
    next ranked partition with writing the current one: LightGBM, numba, pyarrow and
    sqlite3 release the GIL for their heavy parts, so on two cores neither side waits.
    Order is kept; an error in the producer is raised here, in the consumer; when the
    consumer stops early (an error, too many rejections) the producer is told to stop.
    """
    done = object()
    out: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for result in results:
                if not offer(result):
                    break
            else:
                offer(done)
        except BaseException as exc:  # handed to the consumer, which raises it
            offer(exc)
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="churnops-score-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = out.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


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


def _runs() -> sa.Table:
    from churnops.store.tables import ScoringRun

    return ScoringRun.__table__  # type: ignore[return-value]


def _start_run(
    store: sa.Engine,
    reader: ChunkedSource,
    day: date,
    engine: str,
    model_name: str,
    model_version: str,
    model: Any,
) -> int:
    with store.begin() as conn:
        result = conn.execute(
            _runs()
            .insert()
            .values(
                started_at=datetime.now(UTC),
                status="running",
                scoring_date=day,
                source=reader.label,
                engine=engine,
                model_name=model_name,
                model_version=model_version,
                threshold=float(model.threshold),
                rows_in=0,
                rows_scored=0,
                rows_rejected=0,
                high_risk=0,
                pid=os.getpid(),
                host=socket.gethostname(),
                heartbeat_at=datetime.now(UTC),
            )
        )
        return int(result.inserted_primary_key[0])


class Heartbeat:
    """Refresh a run's ``heartbeat_at`` every ``every`` seconds from a background thread.

    A thread, not a beat per chunk: a run also lives through phases with no chunk to count
    (a Spark job computing, a slow source, the swap). During an SQLite swap the beat waits
    for the write lock like any writer and lands after the commit; a beat that fails
    (store unreachable for a moment) is skipped, the next one tries again.
    """

    def __init__(self, store: sa.Engine, run_id: int, every: float = 30.0) -> None:
        self.store, self.run_id, self.every = store, run_id, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="churnops-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        runs = _runs()
        while not self._stop.wait(self.every):
            try:
                with self.store.begin() as conn:
                    conn.execute(
                        runs.update()
                        .where(runs.c.id == self.run_id, runs.c.status == "running")
                        .values(heartbeat_at=datetime.now(UTC))
                    )
            except sa.exc.SQLAlchemyError:
                continue


def _status(store: sa.Engine, run_id: int) -> str | None:
    runs = _runs()
    with store.connect() as conn:
        return conn.execute(sa.select(runs.c.status).where(runs.c.id == run_id)).scalar()


def sweep(store: sa.Engine, stale_after: timedelta = timedelta(minutes=30)) -> dict[str, int]:
    """Close runs whose process died, and delete stored rows that no date shows.

    A run killed before it could close itself stays ``running``. It becomes ``abandoned``
    when it ran on this host and its process is gone, or — wherever it ran (another
    machine, another container) — when its heartbeat is older than ``stale_after`` (a
    live run refreshes it every 30 s, see :class:`Heartbeat`). A replaced run's rows
    are normally deleted right after the swap; if that was interrupted, they are deleted
    here. Runs still running are never touched: their rows are not committed yet.
    """
    from churnops.store.tables import RunScore, ScoringDate

    runs, rows, dates = _runs(), RunScore.__table__, ScoringDate.__table__
    host = socket.gethostname()
    now = datetime.now(UTC)
    with store.begin() as conn:
        candidates = conn.execute(
            sa.select(runs.c.id, runs.c.pid, runs.c.host, runs.c.heartbeat_at).where(
                runs.c.status == "running"
            )
        ).all()
        dead: dict[int, str] = {}
        for run_id, pid, run_host, beat in candidates:
            if run_host == host and pid is not None and not _alive(pid):
                dead[run_id] = "The scoring process ended before closing the run (killed?)."
            elif beat is not None and now - _aware(beat) > stale_after:
                since = _aware(beat).isoformat(sep=" ", timespec="seconds")
                dead[run_id] = (
                    f"No heartbeat from the run (host {run_host}) since {since}, more than "
                    f"{stale_after} ago: its process is gone."
                )
        for run_id, error in dead.items():
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id, runs.c.status == "running")
                .values(status="abandoned", finished_at=now, error=error)
            )
        replaced = (
            sa.select(runs.c.id)
            .where(runs.c.status != "running")
            .where(runs.c.id.not_in(sa.select(dates.c.run_id)))
        )
        deleted = conn.execute(rows.delete().where(rows.c.run_id.in_(replaced))).rowcount
    return {"abandoned": len(dead), "rows_deleted": max(deleted or 0, 0)}


def _aware(moment: datetime) -> datetime:
    """SQLite gives timestamps back without their zone; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _finish_run(
    store: sa.Engine,
    run_id: int,
    status: str,
    counts: dict[str, int],
    started: float,
    digest: str,
    error: str | None = None,
) -> None:
    runs = _runs()
    with store.begin() as conn:
        conn.execute(
            runs.update()
            .where(runs.c.id == run_id)
            .values(
                status=status,
                finished_at=datetime.now(UTC),
                seconds=round(time.perf_counter() - started, 3),
                source_digest=digest,
                error=error,
                **counts,
            )
        )


def _record_rejected(store: sa.Engine, run_id: int, result: ChunkResult) -> None:
    """Commit the chunk's rejections at once, so a failed run still shows why."""
    if result.rejected.empty:
        return
    from churnops.store.tables import RejectedRow

    rows = result.rejected.assign(run_id=run_id)
    rows["row_number"] = rows["row_number"].astype(int)
    records = rows.astype(object).where(rows.notna(), None).to_dict("records")
    with store.begin() as conn:
        conn.execute(RejectedRow.__table__.insert(), records)


def get_run(settings: Settings, run_id: int) -> dict[str, Any]:
    """Return one ``scoring_runs`` row as a JSON-friendly dict."""
    from churnops.errors import DataError
    from churnops.store import get_engine

    runs = _runs()
    with get_engine(settings).connect() as conn:
        row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
    if row is None:
        raise DataError(f"No scoring run {run_id}.")
    return _plain(row)


def list_runs(settings: Settings, limit: int = 20) -> list[dict[str, Any]]:
    """Return the latest scoring runs, newest first."""
    from churnops.store import get_engine

    runs = _runs()
    query = sa.select(runs).order_by(runs.c.id.desc()).limit(limit)
    with get_engine(settings).connect() as conn:
        return [_plain(r) for r in conn.execute(query).mappings()]


def _plain(row: Any) -> dict[str, Any]:
    out = {}
    for key, value in dict(row).items():
        if isinstance(value, datetime | date):
            value = value.isoformat()
        out[key] = value
    return out
