"""Write a ranked run and swap its date in one transaction; then drop the run it replaced.

Storage (migration 0005): a run's rows go to ``run_scores`` keyed by (run_id, risk_rank)
and arrive in rank order, so inserting is an append to the table's only B-tree; the date's
row in ``scoring_dates`` points to the run it shows, and readers see ``churn_scores``, a
view through that pointer. One transaction inserts the run's rows and moves the pointer:

- a reader sees the previous complete run or the new complete run, never a mix (SQLite in
  WAL mode, PostgreSQL MVCC) — the new rows are invisible until the pointer commits;
- a run killed midway rolls back with its connection and leaves nothing behind;
- re-running a date moves the pointer and never duplicates a customer.

The replaced run's rows are deleted after the swap commits, in their own transaction (they
are already invisible), so a re-run costs no more than a first run inside the swap.
SQLite inserts 100 rows per statement (a tenth of the per-row statement overhead of
``executemany``); PostgreSQL streams CSV written by Arrow through ``COPY … FROM STDIN``.
Rows go in without reasons (most have none, and binding a NULL per row costs ~40%); the
top ranks' reasons are set by primary key at the end of the same transaction. The columns
written are the ranked tables' own: ``segment`` and ``value`` only when the run has them.
The run's customer-key blocks (a few hundred rows, :mod:`churnops.batch.keys`) join the
same transaction, so a customer's history finds exactly the runs the dates show.
"""

from __future__ import annotations

import io
import itertools
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

from churnops.errors import ConfigError
from churnops.store.database import BUSY_SECONDS, sqlite_pragmas

ROWS_PER_STATEMENT = 100  # ≤ 500 bound values: within every SQLite build's variable limit
RowsWritten = Callable[[int], None]
LateReasons = Callable[[], list[tuple[int, str]]]
KeyBlocks = Callable[[], Iterable[tuple[int, bytes]]]
SET_REASONS = "UPDATE run_scores SET reasons = {p} WHERE run_id = {p} AND risk_rank = {p}"
ADD_KEYS = "INSERT INTO customer_keys (run_id, bucket, block) VALUES ({p}, {p}, {p})"
RUN_TABLES = ("run_scores", "customer_keys")  # what a run stores, by run_id


@dataclass(frozen=True)
class PausePoint:
    """Testing hook: where a run pauses (``chunk N`` or ``swap``) and for how long."""

    at: str = ""
    seconds: float = 0.0


def pause(point: str, hook: PausePoint) -> None:
    """Announce ``point`` on stderr and sleep there when the hook asks for it."""
    if hook.at and point == hook.at:
        print(f"churnops-batch-pause: {point}", file=sys.stderr, flush=True)
        time.sleep(hook.seconds)


class RunWriter:
    """Insert a ranked run and point its date at it; use as a context manager."""

    def __init__(
        self, url: sa.URL, hook: PausePoint | None = None, busy_seconds: float = BUSY_SECONDS
    ) -> None:
        self.url = url
        self.hook = hook or PausePoint()
        self.busy_seconds = busy_seconds

    def __enter__(self) -> RunWriter:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Open the writer's own connection."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the connection (an open transaction rolls back)."""
        self.conn.close()

    def swap(
        self,
        run_id: int,
        day: date,
        tables: Iterable[pa.Table],
        written: RowsWritten | None = None,
        reasons: LateReasons | None = None,
        blocks: KeyBlocks | None = None,
    ) -> int | None:
        """Insert the run's ranked rows and point ``day`` at the run, in one transaction.

        ``tables`` hold ``risk_rank``, ``customer_id``, ``score`` (and the run's
        ``segment``, ``value``: every table the same columns) in rank order;
        ``reasons()`` is called after the last row and returns ``(risk_rank, reasons)``
        pairs set in the same transaction — so explaining the top rows can run while
        the run is written — and ``blocks()`` the run's ``(bucket, block)`` customer
        keys. Returns the id of the run the date showed before (None for a new date).
        """
        raise NotImplementedError

    def purge(self, run_id: int | None) -> None:
        """Delete the rows of a run no date points to any more."""
        if run_id is not None:  # autocommit: one statement each, its own transaction
            for table in RUN_TABLES:
                self.conn.execute(f"DELETE FROM {table} WHERE run_id = {int(run_id)}")


class SqliteWriter(RunWriter):
    """SQLite: ``BEGIN IMMEDIATE``, multi-row inserts, pointer upsert, ``COMMIT``."""

    def open(self) -> None:
        """Open the database in autocommit mode; transactions are explicit below."""
        self.conn = sqlite3.connect(self.url.database or ":memory:", isolation_level=None)
        # The store's settings (WAL: readers see the previous run while a swap commits).
        sqlite_pragmas(self.conn, self.busy_seconds)

    def swap(
        self,
        run_id: int,
        day: date,
        tables: Iterable[pa.Table],
        written: RowsWritten | None = None,
        reasons: LateReasons | None = None,
        blocks: KeyBlocks | None = None,
    ) -> int | None:
        """Insert the run and move the date's pointer under one write lock."""
        self.conn.execute("BEGIN IMMEDIATE")  # one writer at a time; readers go on
        try:
            for table in tables:
                columns = tuple(table.column_names)
                many = _values_sql(run_id, columns, ROWS_PER_STATEMENT)
                width = len(columns) * ROWS_PER_STATEMENT
                flat = _interleave(table, columns)
                full = len(flat) - len(flat) % width
                for start in range(0, full, width):
                    self.conn.execute(many, flat[start : start + width])
                if full < len(flat):
                    rest = flat[full:]
                    self.conn.execute(_values_sql(run_id, columns, len(rest) // len(columns)), rest)
                if written is not None:
                    written(table.num_rows)
            if reasons is not None:  # the top ranks only: a few thousand primary-key updates
                rows = [(text, run_id, rank) for rank, text in reasons()]
                self.conn.executemany(SET_REASONS.format(p="?"), rows)
            if blocks is not None:
                keys = [(run_id, bucket, block) for bucket, block in blocks()]
                self.conn.executemany(ADD_KEYS.format(p="?"), keys)
            pause("swap", self.hook)
            previous = self.conn.execute(
                "SELECT run_id FROM scoring_dates WHERE scoring_date = ?", (day.isoformat(),)
            ).fetchone()
            self.conn.execute(
                "INSERT INTO scoring_dates (scoring_date, run_id, swapped_at) VALUES (?, ?, ?) "
                "ON CONFLICT (scoring_date) DO UPDATE SET run_id = excluded.run_id, "
                "swapped_at = excluded.swapped_at",
                (day.isoformat(), run_id, _now_sqlite()),
            )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return None if previous is None else int(previous[0])


class PostgresWriter(RunWriter):
    """PostgreSQL: ``COPY`` the run and upsert the pointer in one transaction."""

    def open(self) -> None:
        """Open a dedicated psycopg connection (not pooled: a kill must end its transaction)."""
        import psycopg

        dsn = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.conn = psycopg.connect(dsn, autocommit=True)

    def swap(
        self,
        run_id: int,
        day: date,
        tables: Iterable[pa.Table],
        written: RowsWritten | None = None,
        reasons: LateReasons | None = None,
        blocks: KeyBlocks | None = None,
    ) -> int | None:
        """COPY the run, then move the date's pointer, committed together."""
        options = pacsv.WriteOptions(include_header=False)
        tables = iter(tables)
        first = next(tables, None)  # its columns name the COPY's
        names = ", ".join(["run_id", *(first.column_names if first is not None else [])])
        with self.conn.transaction():
            with (
                self.conn.cursor() as cur,
                cur.copy(f"COPY run_scores ({names}) FROM STDIN (FORMAT csv)") as copy,
            ):
                for table in itertools.chain([first] if first is not None else [], tables):
                    buffer = io.BytesIO()
                    column = pa.array(np.full(table.num_rows, run_id, dtype=np.int64))
                    pacsv.write_csv(table.add_column(0, "run_id", column), buffer, options)
                    copy.write(buffer.getbuffer())
                    if written is not None:
                        written(table.num_rows)
            if reasons is not None:
                with self.conn.cursor() as cur:
                    rows = [(text, run_id, rank) for rank, text in reasons()]
                    cur.executemany(SET_REASONS.format(p="%s"), rows)
            if blocks is not None:
                with self.conn.cursor() as cur:
                    keys = [(run_id, bucket, block) for bucket, block in blocks()]
                    cur.executemany(ADD_KEYS.format(p="%s"), keys)
            pause("swap", self.hook)
            # Two runs of one date queue here; the one that commits last is the date's run.
            self.conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('scoring_dates'), %s)",
                (int(day.strftime("%Y%m%d")),),
            )
            previous = self.conn.execute(
                "SELECT run_id FROM scoring_dates WHERE scoring_date = %s", (day,)
            ).fetchone()
            self.conn.execute(
                "INSERT INTO scoring_dates (scoring_date, run_id, swapped_at) "
                "VALUES (%s, %s, %s) ON CONFLICT (scoring_date) DO UPDATE "
                "SET run_id = excluded.run_id, swapped_at = excluded.swapped_at",
                (day, run_id, datetime.now(UTC)),
            )
        return None if previous is None else int(previous[0])


@lru_cache(maxsize=8)
def _values_sql(run_id: int, columns: tuple[str, ...], rows: int) -> str:
    """A multi-row INSERT; the run id (our own integer) is a literal, not 1M bound values."""
    row = f"({int(run_id)}," + ",".join("?" * len(columns)) + ")"
    names = ", ".join(["run_id", *columns])
    return f"INSERT INTO run_scores ({names}) VALUES " + ",".join([row] * rows)


def _interleave(table: pa.Table, columns: tuple[str, ...]) -> list[object]:
    """Return the table's ``columns`` as one flat list of bind values (row after row).

    Each column lands in its slice (``flat[i::n]``): a C-level copy per column, half the
    cost of zipping rows into tuples and chaining them. A null float becomes NaN, which
    SQLite stores as NULL.
    """
    flat: list[object] = [None] * (table.num_rows * len(columns))
    for i, name in enumerate(columns):
        column = table.column(name)
        if pa.types.is_string(column.type):
            flat[i :: len(columns)] = column.to_pylist()
        else:
            flat[i :: len(columns)] = column.to_numpy().tolist()
    return flat


def _now_sqlite() -> str:
    """Timestamps as SQLAlchemy stores them in SQLite (so the ORM reads them back)."""
    return datetime.now(UTC).isoformat(sep=" ")


def make_writer(
    url: str, hook: PausePoint | None = None, busy_seconds: float = BUSY_SECONDS
) -> RunWriter:
    """Return the writer for the store at ``url`` (SQLite or PostgreSQL)."""
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return SqliteWriter(parsed, hook, busy_seconds)
    if backend == "postgresql":
        return PostgresWriter(parsed, hook, busy_seconds)
    raise ConfigError(f"Batch scoring writes to SQLite or PostgreSQL, not {backend!r}.")
