"""The audit writer process: reads batches of audit/prediction-log rows on stdin, inserts them.

The scoring server starts one per uvicorn worker (``python -m churnops.store.audit_writer``,
see ``churnops.serving.audit``) so that turning rows into SQL — dicts, datetimes, JSON, bind
processing, the driver — runs on another core and never takes the server's GIL.

Wire format on stdin: frames of ``<4-byte little-endian length><marshal blob>``. The first
frame is a header dict (``url``: the store URL, ``flush_seconds``, ``busy_seconds``,
``retry_seconds``); every other frame is ``(audit_rows, prediction_rows)``, lists of tuples
in :data:`AUDIT_FIELDS` / :data:`PREDICTION_FIELDS` order with ``at`` as a Unix timestamp.
The process inserts what it received every ``flush_seconds`` (one transaction, multi-row
``INSERT``s) and, at end of input (the server closed the pipe: graceful shutdown, or the
server died), writes the rest and exits. On stdout it reports ``W <audit> <prediction>``
after each commit, ``Q <rows>`` for rows it quarantined and ``D <rows>`` for rows it could
not store, so the server can count them. SIGINT/SIGTERM are ignored: end of input is the
only stop signal, so a Ctrl-C or a process-group SIGTERM cannot lose what the server is
still flushing to it.

The process lowers its own priority (``WRITER_NICE``): its work comes in bursts (a
commit's worth of rows every ``flush_seconds``), and at the default priority the kernel let
a burst preempt the server on a shared core for milliseconds, which every request in
flight waited out. Measured with the server and its writer on one core under load
(``bench/serve.py``): niceness 10 took /v1/predict from 0.79 to 0.90 of the bare no-op's
requests/s and its p99 from 8.7 to 6.5 ms. At niceness 10 the writer is still entitled to
~10% of a saturated core, about what 8,000 audited requests/s cost it; rows it has not
taken yet wait in the pipe and the server's bounded buffer.

What remained of the tail on a shared core was the kernel's tick (4 ms at ``HZ=250``): a
saturated server never sleeps, so a picked writer kept the core until the next tick. The
writer now rests 20 µs after every millisecond of its own CPU (:class:`Pacer`), so its
turns last about a millisecond, and it still keeps up. Ways that were measured and not
kept (``bench/README.md``, rounds 6 and 7): ``SCHED_IDLE`` and ``sched_yield()`` every 20
rows lowered p99 in 5-second rounds only by putting the writer's work off — after 40 s of
saturation 22,604 rows had been dropped from the full buffer; sleeping 50 µs every
~250 µs of work kept up but cost the writer ~30% more CPU per row.

Two kinds of failure, two answers:

- **The store refuses a row** (a value it cannot hold: a NUL character on PostgreSQL, a
  client's over-long request id): one such row used to fail the whole flush, so one client
  could erase everyone's audit rows. The flush is split in halves until each refused row
  is alone; every other row is written, and a refused row goes whole, as ASCII JSON, to
  ``audit_quarantine`` with the error text. Audit rows are evidence, so they are not
  "cleaned" into something that was never served.
- **The store is unavailable** (SQLite busy past its timeout during a batch swap,
  PostgreSQL restarting): nothing is dropped at once. The rows are kept and retried with
  backoff for up to ``retry_seconds``; meanwhile stdin is not read, so new rows wait in
  the pipe and the server's bounded buffer, which is what bounds memory.
"""

from __future__ import annotations

import gc
import json
import logging
import marshal
import math
import os
import select
import signal
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from churnops.logs import JsonFormatter

log = logging.getLogger("churnops.audit_writer")

HEADER = struct.Struct("<I")
ROWS_PER_INSERT = 80  # x 12 columns: under SQLite's oldest 999-parameter limit
MAX_ROWS_PER_COMMIT = 20_000
WRITER_NICE = 10  # background work: requests in flight come first (see the module docstring)
TURN_SECONDS, REST_SECONDS = 0.001, 20e-6  # at most ~1 ms of CPU at a time (see Pacer)
BEHIND_SECONDS = 1.0  # rows older than this: the writer is behind and stops resting
RETRY_SECONDS = 120.0  # how long rows are kept through a store outage before they are dropped
FIRST_BACKOFF, MAX_BACKOFF = 0.25, 8.0
ERROR_CHARS = 2000

Rows = list[tuple[Any, ...]]

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
JSON_FIELDS = frozenset({"customer_ids", "probabilities", "features"})  # lists/objects as text


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


@dataclass
class Outcome:
    """What one :meth:`StoreWriter.store` call did; ``pending`` rows are to be retried."""

    audits: int = 0
    predictions: int = 0
    quarantined: int = 0
    dropped: int = 0
    pending_audits: Rows = field(default_factory=list)
    pending_predictions: Rows = field(default_factory=list)
    error: Exception | None = None

    def keep(self, parts: list[tuple[Rows, Rows]], error: Exception) -> Outcome:
        """Keep the rows of ``parts`` for a retry: the store failed, not the rows."""
        for audits, predictions in parts:
            self.pending_audits.extend(audits)
            self.pending_predictions.extend(predictions)
        self.error = error
        return self


class StoreWriter:
    """Insert audit and prediction-log rows into the store (same values as ``insert()``)."""

    def __init__(
        self,
        url: str,
        busy_seconds: float | None = None,
        pace: Callable[[], None] = lambda: None,  # no rests (tests, bench/sizing.py)
    ) -> None:
        self.url = url
        self.busy_seconds = busy_seconds
        self.pace = pace  # called between statements: the writer process passes a Pacer
        self._engine: Any = None

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from churnops.store.database import BUSY_SECONDS, _engine

            # migrates the store on first use; a failure is retried at the next write
            self._engine = _engine(self.url, self.busy_seconds or BUSY_SECONDS)
        return self._engine

    def store(self, audits: Rows, predictions: Rows) -> Outcome:
        """Write the rows; quarantine rows the store refuses; keep all rows in an outage.

        A write the store refuses because of its rows is split in halves until each
        refused row is alone (a few transactions for one bad row among thousands, not one
        per row), so every other row is written.
        """
        out = Outcome()
        parts = [(audits, predictions)]
        while parts:
            part = parts.pop()
            try:
                self.write(*part)
            except Exception as exc:
                if not refused(exc):
                    return out.keep([*parts, part], exc)
                if len(part[0]) + len(part[1]) > 1:
                    parts.extend(reversed(_halves(*part)))
                    continue
                try:
                    self.quarantine(*part, exc)
                except Exception as again:
                    if not refused(again):
                        return out.keep([*parts, part], again)
                    log.error("cannot quarantine a refused row either, dropped: %s", again)
                    out.dropped += 1
                else:
                    out.quarantined += 1
            else:
                out.audits += len(part[0])
                out.predictions += len(part[1])
        return out

    def write(self, audit_rows: Rows, prediction_rows: Rows) -> None:
        """Write both lists in one transaction (raises on a store error)."""
        from churnops.store.tables import AuditLog, PredictionLog

        with self.engine.begin() as conn:
            if audit_rows:
                insert_rows(conn, AuditLog.__table__, AUDIT_FIELDS, audit_rows, self.pace)
            if prediction_rows:
                insert_rows(
                    conn, PredictionLog.__table__, PREDICTION_FIELDS, prediction_rows, self.pace
                )

    def quarantine(self, audit_rows: Rows, prediction_rows: Rows, error: Exception) -> None:
        """Store one refused row, unaltered, as ASCII JSON with why the store refused it.

        ASCII JSON escapes every character a store or driver could refuse (NUL, lone
        surrogates, control characters), so the quarantine itself cannot be refused.
        """
        from churnops.store.tables import AuditQuarantine
        from churnops.store.text import storable

        kind, fields, values = (
            ("audit", AUDIT_FIELDS, audit_rows[0])
            if audit_rows
            else ("prediction", PREDICTION_FIELDS, prediction_rows[0])
        )
        row = json.dumps(dict(zip(fields, values, strict=False)), ensure_ascii=True, default=repr)
        with self.engine.begin() as conn:
            conn.execute(
                AuditQuarantine.__table__.insert().values(
                    at=datetime.now(UTC),
                    kind=kind,
                    row=row,
                    error=storable(_reason(error), ERROR_CHARS),
                )
            )


def refused(exc: BaseException) -> bool:
    """Say whether a failed write is the rows' fault (a value refused), not the store's.

    Statement errors other than operational/interface ones (the database or the driver
    refused a value: ``DataError``, ``IntegrityError``…) and errors building the row
    (``ValueError``, ``TypeError``) are the rows'; anything else — busy, unreachable,
    cannot open or migrate — is the store's, and is retried.
    """
    import sqlalchemy.exc as sa_exc

    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return False
    if getattr(exc, "connection_invalidated", False):
        return False
    return isinstance(exc, sa_exc.StatementError | ValueError | TypeError)


def _halves(audits: Rows, predictions: Rows) -> list[tuple[Rows, Rows]]:
    """Split a refused write in two: by kind first, then each kind's rows in halves."""
    if audits and predictions:
        return [(audits, []), ([], predictions)]
    if audits:
        mid = len(audits) // 2
        return [(audits[:mid], []), (audits[mid:], [])]
    mid = len(predictions) // 2
    return [([], predictions[:mid]), ([], predictions[mid:])]


def _reason(exc: BaseException) -> str:
    """The database's or driver's own message, without SQLAlchemy's echo of the values."""
    orig = getattr(exc, "orig", None)
    source = orig if orig is not None else exc
    return f"{type(source).__name__}: {source}"


def insert_rows(
    conn: Any,
    table: Any,
    fields: tuple[str, ...],
    rows: Rows,
    pace: Callable[[], None],
) -> None:
    """Insert rows (tuples in ``fields`` order, ``at`` first), ``ROWS_PER_INSERT`` at a time.

    One multi-row INSERT statement per 80 rows instead of ``executemany``'s one step per
    row, and each row turned into parameters in place (the timestamp by
    :func:`timestamp_param`, lists and objects into JSON text, then the bind processors
    of the other columns that have one): every audited request costs the writer process
    this loop, on a core the server may share. Stored values are exactly what
    ``insert()`` would store; drivers with named/numeric placeholders keep ``executemany``.
    ``pace`` is called after each statement (see :class:`Pacer`): rows become parameters
    one statement's worth at a time, so no step between two calls is longer than that.
    """
    dialect = conn.dialect
    json = tuple(i for i, name in enumerate(fields) if name in JSON_FIELDS)
    marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
    if marker is None:  # pragma: no cover - no such driver among churnops' stores
        rows_out = [dict(zip(fields, _values(v, fields, _utc, json), strict=True)) for v in rows]
        conn.execute(table.insert(), rows_out)
        return
    columns = [table.c[name] for name in fields]
    at = timestamp_param(columns[0].type, dialect)
    processors = [
        (i, process)
        for i, column in enumerate(columns)
        if i and (process := column.type._cached_bind_processor(dialect)) is not None
    ]
    names = ", ".join(dialect.identifier_preparer.quote(c.name) for c in columns)
    group = "(" + ", ".join([marker] * len(fields)) + ")"
    table_name = dialect.identifier_preparer.format_table(table)
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start : start + ROWS_PER_INSERT]
        params: list[Any] = []
        for values in chunk:
            row = _values(values, fields, at, json)
            for i, process in processors:
                row[i] = process(row[i])
            params.extend(row)
        sql = f"INSERT INTO {table_name} ({names}) VALUES " + ", ".join([group] * len(chunk))
        conn.exec_driver_sql(sql, tuple(params))
        pace()


class Pacer:
    """Give the core back for a moment after every ``turn_seconds`` of this thread's CPU.

    Why: a server saturating the core it shares with the writer never sleeps, so once the
    kernel picks the writer, the writer keeps the core until it blocks or the next tick
    (4 ms at ``HZ=250``), and every request in flight waits that long — the p99 tail that
    was left. Sleeping ``rest_seconds`` after each millisecond of work cuts a commit's
    worth of rows into millisecond turns. Once per statement (80 rows, ~0.3 ms) the check
    costs one clock read.

    The rests cost the writer some of its share of the core (a sleeper's claim is not
    carried over in full), and 1,000-customer batches need about all of it at niceness 10:
    paced throughout, 40 s of them dropped 8,960 rows. So the writer rests only while it
    keeps up (:meth:`keep_up`): once its oldest row waited ``BEHIND_SECONDS``, it works in
    whole turns until it has caught up. Audit rows first, the tail second; unlike
    ``sched_yield`` or ``SCHED_IDLE`` (bench/README.md round 6) the work is never put off.
    """

    def __init__(
        self, turn_seconds: float = TURN_SECONDS, rest_seconds: float = REST_SECONDS
    ) -> None:
        self.turn_seconds = turn_seconds
        self.rest_seconds = rest_seconds
        self.resting = True
        self._since = time.thread_time()

    def keep_up(self, audits: Rows, predictions: Rows) -> None:
        """Rest only while the oldest rows to write (``at`` first, a Unix time) are recent.

        A row without a usable time is left to the write, which quarantines it.
        """
        try:
            oldest = min(float(rows[0][0]) for rows in (audits, predictions) if rows)
        except (IndexError, TypeError, ValueError):
            return
        self.resting = time.time() - oldest < BEHIND_SECONDS

    def __call__(self) -> None:
        if self.resting and time.thread_time() - self._since >= self.turn_seconds:
            time.sleep(self.rest_seconds)
            self._since = time.thread_time()


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def timestamp_param(column_type: Any, dialect: Any) -> Callable[[float], Any]:
    """Return how a Unix timestamp becomes the driver's parameter for ``column_type``.

    SQLAlchemy's SQLite ``DATETIME`` turns a datetime into text through a dict of its
    seven fields; with building the datetime first that was the largest single cost of
    an audit row in the writer (~3 µs of ~14 on a slow core). With its default storage
    format the text is the UTC second, which changes once a second for rows that come
    in time order, plus the microseconds: :class:`_SQLiteTimes` builds the same text
    for a fraction of the cost. Any other type or format keeps the column's own bind
    processor.
    """
    from sqlalchemy.dialects import sqlite

    impl = column_type.dialect_impl(dialect)
    if type(impl) is sqlite.DATETIME and impl._storage_format == sqlite.DATETIME._storage_format:
        return _SQLiteTimes()
    process = column_type._cached_bind_processor(dialect)
    if process is None:
        return _utc
    return lambda timestamp: process(_utc(timestamp))


class _SQLiteTimes:
    """Unix timestamp -> SQLite ``DATETIME`` text, equal to SQLAlchemy's for the same instant.

    The microseconds are rounded as ``datetime.fromtimestamp`` rounds them (half to
    even, carrying into the second); the seconds' text is kept for the next row.
    """

    def __init__(self) -> None:
        self._second = math.nan
        self._text = ""

    def __call__(self, timestamp: float) -> str:
        fraction, second = math.modf(timestamp)
        micro = round(fraction * 1e6)
        if micro >= 1_000_000:
            second, micro = second + 1, micro - 1_000_000
        elif micro < 0:
            second, micro = second - 1, micro + 1_000_000
        if second != self._second:
            self._second = second
            self._text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
        return f"{self._text}.{micro:06d}"


def _values(
    values: tuple[Any, ...],
    fields: tuple[str, ...],
    at: Callable[[float], Any],
    json: tuple[int, ...],
) -> list[Any]:
    """Return one row's values as the table stores them (``at`` applied to the time).

    The JSON fields' lists and objects (``json``: their positions in ``fields``) become
    JSON text, which is what their columns hold.
    """
    if len(values) != len(fields):
        raise ValueError(f"a row has {len(values)} fields, expected {len(fields)}: {fields}")
    row = list(values)
    row[0] = at(row[0])
    for i in json:
        if isinstance(row[i], list | dict):
            row[i] = orjson.dumps(row[i]).decode()
    return row


def run(fd: int, report: Callable[[str], None]) -> None:
    """Read frames from ``fd`` until end of input, writing rows in timed batches."""
    buf = bytearray()
    store: StoreWriter | None = None
    flush_seconds, retry_seconds = 0.2, RETRY_SECONDS
    audits: Rows = []
    predictions: Rows = []
    oldest = 0.0  # when the oldest pending row arrived
    failing_since: float | None = None  # pending rows wait for the store since then
    retry_at, backoff = 0.0, FIRST_BACKOFF
    outage = False  # one error line per outage
    eof = False
    frozen = False  # the heap, after the first write (gc.freeze)
    pacer = Pacer()
    while not eof or audits or predictions:
        if failing_since is not None:
            # Not reading meanwhile: the pipe and the server's bounded buffer hold new rows.
            time.sleep(max(0.0, retry_at - time.monotonic()))
        elif not eof:
            pending = audits or predictions
            timeout = max(0.0, oldest + flush_seconds - time.monotonic()) if pending else None
            ready, _, _ = select.select([fd], [], [], timeout)
            if ready:
                chunk = os.read(fd, 1 << 20)
                eof = not chunk
                buf += chunk
                for item in split_frames(buf):
                    if store is None:
                        store = StoreWriter(item["url"], item.get("busy_seconds"), pacer)
                        flush_seconds = float(item.get("flush_seconds", flush_seconds))
                        retry_seconds = float(item.get("retry_seconds", retry_seconds))
                        continue
                    if not (audits or predictions):
                        oldest = time.monotonic()
                    audits.extend(item[0])
                    predictions.extend(item[1])
        n = len(audits) + len(predictions)
        due = eof or failing_since is not None or time.monotonic() - oldest >= flush_seconds
        if not n or not (due or n >= MAX_ROWS_PER_COMMIT):
            continue
        assert store is not None  # rows only come after the header
        pacer.keep_up(audits, predictions)
        out = store.store(audits, predictions)
        if out.audits or out.predictions:
            report(f"W {out.audits} {out.predictions}\n")
        if out.quarantined:
            log.error("%d row(s) refused by the store, kept in audit_quarantine", out.quarantined)
            report(f"Q {out.quarantined}\n")
        if out.dropped:
            report(f"D {out.dropped}\n")
        audits, predictions = out.pending_audits, out.pending_predictions
        if out.error is None:
            if not frozen:
                # After the first write everything long-lived exists: modules (SQLAlchemy,
                # Alembic, pydantic), the engine, its compiled statements. Out of the cyclic
                # collector's reach, full collections stop walking them: they were 15% of
                # the writer's CPU under load (py-spy), and freezing took it from 6.39 to
                # 5.78 µs a request (bench servers alternating, 6 rounds). Rows are acyclic
                # and still freed by reference counting, frozen or not.
                gc.freeze()
                frozen = True
            if outage:
                log.warning("audit writes work again")
            outage, failing_since, backoff = False, None, FIRST_BACKOFF
            continue
        if not outage:
            reason = _reason(out.error)
            log.error("audit write failed, retrying for up to %.0fs: %s", retry_seconds, reason)
        outage = True
        now = time.monotonic()  # after the attempt, which may have waited for a lock
        failing_since = now if failing_since is None else failing_since
        if now - failing_since < retry_seconds:
            retry_at, backoff = now + backoff, min(backoff * 2, MAX_BACKOFF)
            continue
        left = len(audits) + len(predictions)
        log.error("store unavailable for %.0fs, dropping %d rows", now - failing_since, left)
        report(f"D {left}\n")
        audits, predictions, failing_since, backoff = [], [], None, FIRST_BACKOFF


def configure_logging() -> None:
    """Log JSON lines to stderr, as the server does: the writer's own records and warnings.

    The root logger stays at WARNING, as in the server's process: migrating a new store
    here must not print Alembic's INFO notes ("Context impl SQLiteImpl.", "Running
    upgrade ...") into the server's JSON log.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.captureWarnings(True)  # a library's warning too, not a bare text line
    log.setLevel(logging.INFO)


def main() -> None:
    """Entry point of ``python -m churnops.store.audit_writer``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure_logging()
    os.nice(WRITER_NICE)
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
