"""The records of scoring runs: one ``scoring_runs`` row per run, opened, kept alive, closed.

A run is recorded before any work (status ``running``, with its process id and host) and
closed as ``succeeded`` or ``failed`` with the error text, so a crash leaves a trace and the
run table answers "what happened on that date" without reading logs. A run killed before
its swap commits changes nothing in ``churn_scores`` (see :mod:`churnops.batch.writer`);
the next run marks it ``abandoned`` (see :func:`sweep`). The scoring stage
(:mod:`churnops.batch.job`) only says when; this module owns the rows.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from churnops.config import Settings

if TYPE_CHECKING:
    import pandas as pd


def _table() -> sa.Table:
    from churnops.store.tables import ScoringRun

    return ScoringRun.__table__  # type: ignore[return-value]


def start(
    store: sa.Engine,
    *,
    scoring_date: date,
    source: str,
    engine: str,
    model_name: str,
    model_version: str,
    threshold: float,
) -> int:
    """Record a run as ``running`` before it does any work, and return its id.

    The process id and host let :func:`sweep` tell a dead run from a live one.
    """
    with store.begin() as conn:
        result = conn.execute(
            _table()
            .insert()
            .values(
                started_at=datetime.now(UTC),
                status="running",
                scoring_date=scoring_date,
                source=source,
                engine=engine,
                model_name=model_name,
                model_version=model_version,
                threshold=threshold,
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
                error=error,
                **counts,
            )
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
    from churnops.store.tables import RunScore, ScoringDate

    runs, rows, dates = _table(), RunScore.__table__, ScoringDate.__table__
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
    out = {}
    for key, value in dict(row).items():
        if isinstance(value, datetime | date):
            value = value.isoformat()
        out[key] = value
    return out
