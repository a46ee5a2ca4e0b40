"""The audit trail and the sampled prediction log, written by a background thread.

The request path only appends a small tuple to a queue (about a microsecond); one writer
thread drains the queue every ``FLUSH_SECONDS`` (or sooner when it fills up) and writes
all pending rows in one transaction with executemany. Shadow scoring runs in the same
thread, batched, so the challenger never slows the champion's answers. If the store is
down or the queue overflows, rows are dropped and counted
(``churnops_audit_dropped_total``) rather than blocking or failing predictions.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from churnops.config import Settings

log = logging.getLogger("churnops.serving")

FLUSH_SECONDS = 0.5
MAX_QUEUE = 200_000
MAX_BATCH = 5_000

AUDIT, PREDICTION, JOB = 0, 1, 2


class AuditWriter:
    """Queue audit and prediction-log rows; write them in batches from one thread."""

    def __init__(self, settings: Settings, on_drop: Callable[[int], None] | None = None) -> None:
        self.settings = settings
        self._queue: queue.SimpleQueue[tuple[int, Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._on_drop = on_drop or (lambda n: None)
        self.written = {"audit": 0, "prediction": 0}

    def start(self) -> None:
        """Start the writer thread (idempotent); migrate the store first."""
        from churnops.store import get_engine

        if self._thread is not None:
            return
        self._engine = get_engine(self.settings)
        self._thread = threading.Thread(target=self._run, name="churnops-audit", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write everything queued, then stop the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        self._thread = None

    def audit(self, row: dict[str, Any]) -> None:
        """Queue one audit row (see ``store.AuditLog`` for the columns)."""
        self._put((AUDIT, row))

    def predictions(self, rows: list[dict[str, Any]]) -> None:
        """Queue prediction-log rows (see ``store.PredictionLog``)."""
        if rows:
            self._put((PREDICTION, rows))

    def job(self, func: Callable[[], list[dict[str, Any]]]) -> None:
        """Run ``func`` in the writer thread; the prediction-log rows it returns are written."""
        self._put((JOB, func))

    def _put(self, item: tuple[int, Any]) -> None:
        if self._thread is None or self._queue.qsize() > MAX_QUEUE:
            self._on_drop(1)
            return
        self._queue.put(item)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                first = self._queue.get(timeout=FLUSH_SECONDS)
            except queue.Empty:
                continue
            items = [first]
            while len(items) < MAX_BATCH:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if None in items:
                stopping = True
                items = [i for i in items if i is not None]
                while True:  # drain what arrived before the stop marker
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is not None:
                        items.append(more)
            self._write(items)

    def _write(self, items: list[tuple[int, Any]]) -> None:
        from churnops.store import AuditLog, PredictionLog

        audits: list[dict[str, Any]] = []
        predictions: list[dict[str, Any]] = []
        for kind, payload in items:
            if kind == AUDIT:
                audits.append(payload)
            elif kind == PREDICTION:
                predictions.extend(payload)
            else:
                try:
                    predictions.extend(payload())
                except Exception:
                    log.exception("background job failed")
        if not audits and not predictions:
            return
        for row in audits:  # JSON-encode lists here, off the request path
            for key in ("customer_ids", "probabilities"):
                if isinstance(row.get(key), list):
                    row[key] = orjson.dumps(row[key]).decode()
        for row in predictions:
            if not isinstance(row["features"], str):
                row["features"] = orjson.dumps(row["features"]).decode()
        try:
            with self._engine.begin() as conn:
                if audits:
                    conn.execute(AuditLog.__table__.insert(), audits)
                if predictions:
                    conn.execute(PredictionLog.__table__.insert(), predictions)
        except Exception as exc:
            log.error(
                "audit write failed, %d rows dropped: %s", len(audits) + len(predictions), exc
            )
            self._on_drop(len(audits) + len(predictions))
            return
        self.written["audit"] += len(audits)
        self.written["prediction"] += len(predictions)


def now() -> datetime:
    """Return the current UTC time (one place, so rows agree on the clock)."""
    return datetime.now(UTC)
