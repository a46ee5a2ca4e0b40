"""The audit writer process: reads batches of audit/prediction-log rows on stdin, inserts them.

The scoring server starts one per uvicorn worker (``python -m churnops.store.audit_writer``,
see ``churnops.serving.audit``) so that turning rows into SQL — dicts, datetimes, JSON, bind
processing, the driver — runs on another core and never takes the server's GIL.

Wire format on stdin: frames of ``<4-byte little-endian length><marshal blob>``. The first
frame is a header dict (``url``: the store URL, ``flush_seconds``); every other frame is
``(audit_rows, prediction_rows)``, lists of tuples in :data:`AUDIT_FIELDS` /
:data:`PREDICTION_FIELDS` order with ``at`` as a Unix timestamp. The process inserts what it
received every ``flush_seconds`` (one transaction, multi-row ``INSERT``s) and, at end of
input (the server closed the pipe: graceful shutdown, or the server died), writes the rest
and exits. On stdout it reports ``W <audit> <prediction>`` after each commit and
``D <rows>`` for rows it could not store, so the server can count drops. SIGINT/SIGTERM are
ignored: end of input is the only stop signal, so a Ctrl-C or a process-group SIGTERM
cannot lose what the server is still flushing to it.
"""

from __future__ import annotations

import logging
import marshal
import os
import select
import signal
import struct
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson

log = logging.getLogger("churnops.audit_writer")

HEADER = struct.Struct("<I")
ROWS_PER_INSERT = 80  # x 12 columns: under SQLite's oldest 999-parameter limit
MAX_ROWS_PER_COMMIT = 20_000

AUDIT_FIELDS = (
    "at",
    "request_id",
    "key_name",
    "route",
    "status",
    "latency_ms",
    "customer_ids",
    "n_customers",
    "payload_digest",
    "model_version",
    "variant",
    "probabilities",
)
PREDICTION_FIELDS = (
    "at",
    "request_id",
    "model_name",
    "model_version",
    "variant",
    "customer_id",
    "features",
    "probability",
    "churn",
)


def frame(obj: Any) -> bytes:
    """Return ``obj`` marshalled, with its length prefix."""
    blob = marshal.dumps(obj)
    return HEADER.pack(len(blob)) + blob


def split_frames(buf: bytearray) -> list[Any]:
    """Remove every complete frame from the front of ``buf``; return them unmarshalled."""
    out = []
    start = 0
    size = HEADER.size
    while len(buf) - start >= size:
        (n,) = HEADER.unpack_from(buf, start)
        if len(buf) - start - size < n:
            break
        out.append(marshal.loads(memoryview(buf)[start + size : start + size + n]))
        start += size + n
    if start:
        del buf[:start]
    return out


class StoreWriter:
    """Insert audit and prediction-log rows into the store (same values as ``insert()``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Any = None

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from churnops.store.database import _engine

            self._engine = _engine(self.url)  # migrates the store on first use
        return self._engine

    def write(
        self, audit_rows: list[tuple[Any, ...]], prediction_rows: list[tuple[Any, ...]]
    ) -> None:
        """Write both lists in one transaction (raises on a store error)."""
        from churnops.store.tables import AuditLog, PredictionLog

        dumps = orjson.dumps
        audits = []
        for values in audit_rows:
            row = dict(zip(AUDIT_FIELDS, values, strict=True))
            row["at"] = datetime.fromtimestamp(row["at"], UTC)
            for key in ("customer_ids", "probabilities"):
                if isinstance(row[key], list):
                    row[key] = dumps(row[key]).decode()
            audits.append(row)
        predictions = []
        for values in prediction_rows:
            row = dict(zip(PREDICTION_FIELDS, values, strict=True))
            row["at"] = datetime.fromtimestamp(row["at"], UTC)
            if not isinstance(row["features"], str):
                row["features"] = dumps(row["features"]).decode()
            predictions.append(row)
        with self.engine.begin() as conn:
            if audits:
                insert_audits(conn, AuditLog.__table__, audits)
            if predictions:
                conn.execute(PredictionLog.__table__.insert(), predictions)


def insert_audits(conn: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert audit rows with multi-row INSERT statements, ``ROWS_PER_INSERT`` at a time.

    One statement per 80 rows instead of ``executemany``'s one step per row. The values go
    through each column type's own bind processor, so stored values are exactly what
    ``insert()`` would store; drivers with named/numeric placeholders keep ``executemany``.
    """
    dialect = conn.dialect
    marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
    if marker is None:  # pragma: no cover - no such driver among churnops' stores
        conn.execute(table.insert(), rows)
        return
    columns = [table.c[name] for name in AUDIT_FIELDS]
    processors = [c.type._cached_bind_processor(dialect) for c in columns]
    names = ", ".join(dialect.identifier_preparer.quote(c.name) for c in columns)
    group = "(" + ", ".join([marker] * len(columns)) + ")"
    table_name = dialect.identifier_preparer.format_table(table)
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start : start + ROWS_PER_INSERT]
        params: list[Any] = []
        for row in chunk:
            for name, process in zip(AUDIT_FIELDS, processors, strict=True):
                value = row[name]
                params.append(process(value) if process is not None else value)
        sql = f"INSERT INTO {table_name} ({names}) VALUES " + ", ".join([group] * len(chunk))
        conn.exec_driver_sql(sql, tuple(params))


def run(fd: int, report: Any) -> None:
    """Read frames from ``fd`` until end of input, writing rows in timed batches."""
    buf = bytearray()
    header: dict[str, Any] | None = None
    store: StoreWriter | None = None
    flush_seconds = 0.2
    audits: list[tuple[Any, ...]] = []
    predictions: list[tuple[Any, ...]] = []
    oldest = 0.0
    eof = False
    failing = False
    while not eof:
        pending = audits or predictions
        timeout = max(0.0, oldest + flush_seconds - time.monotonic()) if pending else None
        ready, _, _ = select.select([fd], [], [], timeout)
        if ready:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                eof = True
            buf += chunk
            for item in split_frames(buf):
                if header is None:
                    header = item
                    store = StoreWriter(item["url"])
                    flush_seconds = float(item.get("flush_seconds", flush_seconds))
                    continue
                if not (audits or predictions):
                    oldest = time.monotonic()
                audits.extend(item[0])
                predictions.extend(item[1])
        n = len(audits) + len(predictions)
        if n and (eof or time.monotonic() - oldest >= flush_seconds or n >= MAX_ROWS_PER_COMMIT):
            try:
                assert store is not None
                store.write(audits, predictions)
            except Exception as exc:
                if not failing:
                    log.error("audit write failed, dropping rows until it works again: %s", exc)
                failing = True
                if store is not None:
                    store._engine = None  # try to reconnect (and migrate) next time
                report(f"D {n}\n")
            else:
                if failing:
                    log.warning("audit writes work again")
                failing = False
                report(f"W {len(audits)} {len(predictions)}\n")
            audits, predictions = [], []


def main() -> None:
    """Entry point of ``python -m churnops.store.audit_writer``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s churnops-audit-writer %(levelname)s %(message)s"
    )
    out = sys.stdout

    def report(line: str) -> None:
        try:
            out.write(line)
            out.flush()
        except (BrokenPipeError, ValueError):  # the server is gone: nobody to tell
            pass

    run(sys.stdin.buffer.fileno(), report)


if __name__ == "__main__":
    main()
