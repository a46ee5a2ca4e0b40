"""The records of scoring runs: one ``scoring_runs`` row per run, opened, kept alive, closed.

A run is recorded before any work (status ``running``, with its process id and host) and
closed as ``succeeded`` or ``failed`` with the error text, so a crash leaves a trace and the
run table answers "what happened on that date" without reading logs. A run killed before
its swap commits changes nothing in ``churn_scores`` (see :mod:`churnops.batch.writer`);
the next run marks it ``abandoned`` (see :func:`sweep`). One run per scoring date at a
time (see :func:`claim`). The scoring stage (:mod:`churnops.batch.job`) only says when;
this module owns the rows.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

import sqlalchemy as sa

from churnops.config import Settings
from churnops.errors import RunInProgressError
from churnops.features.segments import SegmentKey
from churnops.store.text import storable

log = logging.getLogger("churnops.batch")
# A session-level advisory lock per date (PostgreSQL). The swap's transaction lock on the
# date's pointer has another class id (hashtext('scoring_dates')): the two never collide.
TRY_LOCK = sa.text("SELECT pg_try_advisory_lock(hashtext('scoring_runs'), :day)")
UNLOCK = sa.text("SELECT pg_advisory_unlock(hashtext('scoring_runs'), :day)")

if TYPE_CHECKING:
    import pandas as pd


def _table() -> sa.Table:
    from churnops.store.tables import ScoringRun

    return ScoringRun.__table__  # type: ignore[return-value]


@contextmanager
def claim(store: sa.Engine, stale_after: timedelta, **fields: Any) -> Iterator[int]:
    """Record a run as ``running`` and hold its date's run lock until the block ends.

    ``fields`` are the run's ``scoring_runs`` values (``scoring_date``, ``source``,
    ``engine``, ``model_name``, ``model_version``, ``threshold``). One run per date at a
    time: a run of a date another live run is scoring is refused at once — recorded as
    ``failed`` with the reason and raised as :class:`RunInProgressError` — rather than
    queueing behind it only to replace its result moments later. Runs of other dates go
    on. Dead runs are closed (:func:`sweep`) once the lock is held.

    PostgreSQL: a session advisory lock per date on a connection kept for the run; the
    server drops it when the process dies, so a killed run never blocks its date, and any
    ``running`` row of the date found under the lock is a dead run. SQLite has no session
    locks, so the run table is the lock: the date's live ``running`` rows (this host's
    process alive, or a heartbeat within ``stale_after`` — the sweep's own rule) are
    checked first by a plain read, which never waits for a swap's write lock, and again
    inside ``BEGIN IMMEDIATE`` where the row is inserted.
    """
    day: date = fields["scoring_date"]
    if store.dialect.name != "postgresql":
        with store.connect() as conn:
            live = _live_runs(conn, day, stale_after)
        if live:
            _refuse(store, fields, live[-1])
        sweep(store, stale_after)
        yield _insert_sqlite(store, fields)
        return
    key = {"day": int(day.strftime("%Y%m%d"))}
    with store.connect() as lock:
        held = lock.execute(TRY_LOCK, key).scalar()
        lock.commit()  # a session lock outlives the transaction
        if not held:
            with store.connect() as conn:
                running = _running(conn, day)
            _refuse(store, fields, running[-1] if running else None)
        try:
            sweep(store, stale_after)
            with store.begin() as conn:
                _close_unlocked(conn, day)
                run_id = _insert(conn, fields, "running")
            yield run_id
        finally:
            try:
                lock.execute(UNLOCK, key)
                lock.commit()
            except sa.exc.SQLAlchemyError:
                lock.invalidate()  # closing the session releases its locks


def _insert(conn: sa.Connection, fields: dict[str, Any], status: str, error: str = "") -> int:
    """Insert a run's row (``running``, or ``failed`` for a refused run) and return its id."""
    now = datetime.now(UTC)
    result = conn.execute(
        _table()
        .insert()
        .values(
            **fields,
            started_at=now,
            status=status,
            finished_at=None if status == "running" else now,
            error=error or None,
            rows_in=0,
            rows_scored=0,
            rows_rejected=0,
            high_risk=0,
            pid=os.getpid(),
            host=socket.gethostname(),
            heartbeat_at=now,
        )
    )
    return int(result.inserted_primary_key[0])


def _insert_sqlite(store: sa.Engine, fields: dict[str, Any]) -> int:
    """Check the date again and insert the run under SQLite's write lock."""
    with store.connect() as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # pysqlite sends no BEGIN before a SELECT
        running = _running(conn, fields["scoring_date"])
        if not running:
            run_id = _insert(conn, fields, "running")
            conn.commit()
            return run_id
        conn.rollback()
    _refuse(store, fields, running[-1])


def _running(conn: sa.Connection, day: date) -> list[sa.Row[Any]]:
    """The date's ``running`` rows, oldest first."""
    runs = _table()
    query = (
        sa.select(runs.c.id, runs.c.pid, runs.c.host, runs.c.heartbeat_at)
        .where(runs.c.scoring_date == day, runs.c.status == "running")
        .order_by(runs.c.id)
    )
    return list(conn.execute(query).all())


def _live_runs(conn: sa.Connection, day: date, stale_after: timedelta) -> list[sa.Row[Any]]:
    """The date's ``running`` rows whose process may still be alive (see :func:`sweep`)."""
    host, now = socket.gethostname(), datetime.now(UTC)
    return [r for r in _running(conn, day) if _death(r, host, now, stale_after) is None]


def _refuse(store: sa.Engine, fields: dict[str, Any], holder: sa.Row[Any] | None) -> NoReturn:
    """Record this run as ``failed`` (it never started) and raise the refusal.

    Recorded in its own transaction — on SQLite that waits for the write lock like any
    writer — and the refusal is raised even if the record cannot be written.
    """
    day: date = fields["scoring_date"]
    who = "its run is starting"
    details: dict[str, Any] = {"scoring_date": day.isoformat()}
    if holder is not None:
        who = f"run {holder.id}, pid {holder.pid} on {holder.host}"
        details.update(running_run=holder.id, pid=holder.pid, host=holder.host)
    message = (
        f"Another run of {day.isoformat()} is in progress ({who}); this run did not start. "
        "Re-run the date after it ends if its result should be replaced."
    )
    try:
        with store.begin() as conn:
            details["run_id"] = _insert(conn, fields, "failed", message)
    except sa.exc.SQLAlchemyError as exc:
        log.error("could not record the refused run of %s: %s", day, exc)
    raise RunInProgressError(message, details)


def _close_unlocked(conn: sa.Connection, day: date) -> None:
    """Abandon the date's ``running`` rows: this run holds the date's lock, so they are dead."""
    runs = _table()
    conn.execute(
        runs.update()
        .where(runs.c.scoring_date == day, runs.c.status == "running")
        .values(
            status="abandoned",
            finished_at=datetime.now(UTC),
            error="The run no longer held its date's run lock: its process is gone.",
        )
    )


def finish(
    store: sa.Engine,
    run_id: int,
    status: str,
    counts: dict[str, int],
    started: float,
    digest: str,
    error: str | None = None,
) -> None:
    """Close a run with its outcome, counts and duration (``started`` from ``perf_counter``)."""
    runs = _table()
    with store.begin() as conn:
        conn.execute(
            runs.update()
            .where(runs.c.id == run_id)
            .values(
                status=status,
                finished_at=datetime.now(UTC),
                seconds=round(time.perf_counter() - started, 3),
                source_digest=digest,
                error=None if error is None else storable(error),
                **counts,
            )
        )


def describe(store: sa.Engine, run_id: int, segments: str, value_column: str | None) -> None:
    """Record how a run's segment codes read (SegmentKey JSON) and where its values came from."""
    runs = _table()
    with store.begin() as conn:
        conn.execute(
            runs.update()
            .where(runs.c.id == run_id)
            .values(segments=segments, value_column=value_column)
        )


def status(store: sa.Engine, run_id: int) -> str | None:
    """Return a run's status, so a failure after a committed swap does not reopen it."""
    runs = _table()
    with store.connect() as conn:
        return conn.execute(sa.select(runs.c.status).where(runs.c.id == run_id)).scalar()


def record_rejected(store: sa.Engine, run_id: int, rejected: pd.DataFrame) -> None:
    """Commit a chunk's rejected rows at once, so a failed run still shows why."""
    if rejected.empty:
        return
    from churnops.store.tables import RejectedRow

    rows = rejected.assign(run_id=run_id)
    rows["row_number"] = rows["row_number"].astype(int)
    # Reasons quote the source's values: keep one odd value from failing the whole run.
    rows["reason"] = rows["reason"].map(storable)
    records = rows.astype(object).where(rows.notna(), None).to_dict("records")
    with store.begin() as conn:
        conn.execute(RejectedRow.__table__.insert(), records)


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
        runs = _table()
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


def sweep(store: sa.Engine, stale_after: timedelta = timedelta(minutes=30)) -> dict[str, int]:
    """Close runs whose process died, and delete stored rows that no date shows.

    A run killed before it could close itself stays ``running``. It becomes ``abandoned``
    when it ran on this host and its process is gone, or — wherever it ran (another
    machine, another container) — when its heartbeat is older than ``stale_after`` (a
    live run refreshes it every 30 s, see :class:`Heartbeat`). A replaced run's rows
    are normally deleted right after the swap; if that was interrupted, they are deleted
    here. Runs still running are never touched: their rows are not committed yet.
    """
    from churnops.store.tables import CustomerKeys, RunScore, ScoringDate

    runs, rows, dates = _table(), RunScore.__table__, ScoringDate.__table__
    keys = CustomerKeys.__table__
    host = socket.gethostname()
    now = datetime.now(UTC)
    with store.begin() as conn:
        candidates = conn.execute(
            sa.select(runs.c.id, runs.c.pid, runs.c.host, runs.c.heartbeat_at).where(
                runs.c.status == "running"
            )
        ).all()
        dead = {}
        for row in candidates:
            reason = _death(row, host, now, stale_after)
            if reason is not None:
                dead[row.id] = reason
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
        conn.execute(keys.delete().where(keys.c.run_id.in_(replaced)))
    return {"abandoned": len(dead), "rows_deleted": max(deleted or 0, 0)}


def _death(run: sa.Row[Any], host: str, now: datetime, stale_after: timedelta) -> str | None:
    """Why a ``running`` run (id, pid, host, heartbeat_at) is dead; None if it may be alive."""
    if run.host == host and run.pid is not None and not _alive(run.pid):
        return "The scoring process ended before closing the run (killed?)."
    if run.heartbeat_at is not None and now - _aware(run.heartbeat_at) > stale_after:
        since = _aware(run.heartbeat_at).isoformat(sep=" ", timespec="seconds")
        return (
            f"No heartbeat from the run (host {run.host}) since {since}, more than "
            f"{stale_after} ago: its process is gone."
        )
    return None


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


def get_run(settings: Settings, run_id: int) -> dict[str, Any]:
    """Return one ``scoring_runs`` row as a JSON-friendly dict."""
    from churnops.errors import DataError
    from churnops.store import get_engine

    runs = _table()
    with get_engine(settings).connect() as conn:
        row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
    if row is None:
        raise DataError(f"No scoring run {run_id}.")
    return _plain(row)


def list_runs(settings: Settings, limit: int = 20) -> list[dict[str, Any]]:
    """Return the latest scoring runs, newest first."""
    from churnops.store import get_engine

    runs = _table()
    query = sa.select(runs).order_by(runs.c.id.desc()).limit(limit)
    with get_engine(settings).connect() as conn:
        return [_plain(r) for r in conn.execute(query).mappings()]


def _plain(row: Any) -> dict[str, Any]:
    """Return a run as JSON-friendly values: segments as ``{column: [levels]}`` + warnings."""
    out = {}
    for key, value in dict(row).items():
        if isinstance(value, datetime | date):
            value = value.isoformat()
        out[key] = value
    segments = SegmentKey.from_json(out["segments"])
    out["segments"] = segments.levels()
    out["warnings"] = list(segments.warnings)
    return out
