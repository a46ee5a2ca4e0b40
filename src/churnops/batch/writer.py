"""Write a run's scores atomically: stage every chunk, then swap the date in one transaction.

Chunks go into a *temporary* staging table on the writer's own connection, so a killed
run leaves nothing behind (the database drops the table with the session) and scoring
never holds a lock on ``churn_scores``. The swap is one transaction — delete the date's
rows, insert the staged rows with their rank over the whole run — so a reader sees the
previous complete run or the new complete run, never a mix, and re-running a date
replaces it instead of duplicating it. PostgreSQL stages with ``COPY``; SQLite with
``executemany`` into a temp table (it never locks the main database while staging).
"""

from __future__ import annotations

import sqlite3
import sys
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
import sqlalchemy as sa

from churnops.errors import ConfigError, DataValidationError

STAGE = "churn_scores_stage"
SWAP_INSERT = """
INSERT INTO churn_scores (customer_id, scoring_date, score, high_risk, risk_rank,
                          model_name, model_version, threshold, reasons, run_id)
SELECT customer_id, {p}, score, high_risk,
       ROW_NUMBER() OVER (ORDER BY score DESC, customer_id),
       {p}, {p}, {p}, reasons, {p}
FROM churn_scores_stage
"""
SORT_MEMORY_MB = 256  # server-side sort memory for the swap's rank (PostgreSQL)
DUPLICATE_IDS = (
    "Customer ids repeat in the source (across chunks), so the run cannot give each "
    "customer one score for the date; de-duplicate the source and re-run."
)


@dataclass(frozen=True)
class SwapInfo:
    """What every swapped row carries besides its score."""

    scoring_date: date
    run_id: int
    model_name: str
    model_version: str
    threshold: float


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


class ScoreWriter:
    """Stage chunks of scores, then swap them in as one date; use as a context manager."""

    def __init__(self, url: sa.URL, hook: PausePoint | None = None) -> None:
        self.url = url
        self.hook = hook or PausePoint()
        self.staged = 0

    def __enter__(self) -> ScoreWriter:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Open the writer's own connection and create the temporary staging table."""
        raise NotImplementedError

    def stage(self, scores: pd.DataFrame) -> None:
        """Append scored rows (customer_id, score, high_risk, reasons) to the staging table."""
        raise NotImplementedError

    def swap(self, info: SwapInfo) -> int:
        """Replace the date's scores by the staged rows in one transaction; return the count."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the connection (the staging table goes with it)."""
        raise NotImplementedError


class SqliteWriter(ScoreWriter):
    """SQLite: temp staging table, then ``BEGIN IMMEDIATE`` … ``COMMIT`` for the swap."""

    def open(self) -> None:
        """Open the database in autocommit mode; transactions are explicit below."""
        self.conn = sqlite3.connect(self.url.database or ":memory:", isolation_level=None)
        self.conn.execute("PRAGMA busy_timeout = 60000")
        # WAL lets the dashboard and reports read the previous run while the swap commits.
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA cache_size = -65536")  # 64 MB: index inserts stay in memory
        self.conn.execute(
            f"CREATE TEMP TABLE {STAGE} (customer_id TEXT, score REAL, high_risk INTEGER, "
            "reasons TEXT)"
        )

    def stage(self, scores: pd.DataFrame) -> None:
        """Insert the chunk with one ``executemany`` in one temp-database transaction."""
        rows = zip(
            scores["customer_id"].tolist(),
            scores["score"].tolist(),
            scores["high_risk"].astype(int).tolist(),
            scores["reasons"].tolist(),
            strict=True,
        )
        self.conn.execute("BEGIN")
        self.conn.executemany(f"INSERT INTO {STAGE} VALUES (?, ?, ?, ?)", rows)
        self.conn.execute("COMMIT")
        self.staged += len(scores)

    def swap(self, info: SwapInfo) -> int:
        """Delete the date and insert the staged run, ranked, in one write transaction."""
        day = info.scoring_date.isoformat()
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute("DELETE FROM churn_scores WHERE scoring_date = ?", (day,))
            pause("swap", self.hook)
            self.conn.execute(
                SWAP_INSERT.format(p="?"),
                (day, info.model_name, info.model_version, info.threshold, info.run_id),
            )
            self.conn.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            self.conn.execute("ROLLBACK")
            raise DataValidationError(DUPLICATE_IDS) from exc
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return self.staged

    def close(self) -> None:
        """Close the connection; SQLite drops the temp table with it."""
        self.conn.close()


class PostgresWriter(ScoreWriter):
    """PostgreSQL: ``COPY`` into a temp table, then one transaction for the swap."""

    def open(self) -> None:
        """Open a dedicated psycopg connection (not pooled: the temp table must die with it)."""
        import psycopg

        dsn = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.conn.execute(
            f"CREATE TEMP TABLE {STAGE} (customer_id text, score double precision, "
            "high_risk boolean, reasons text)"
        )

    def stage(self, scores: pd.DataFrame) -> None:
        """Stream the chunk through ``COPY … FROM STDIN`` (text format)."""
        with (
            self.conn.cursor() as cur,
            cur.copy(f"COPY {STAGE} (customer_id, score, high_risk, reasons) FROM STDIN") as cp,
        ):
            cp.write(_copy_text(scores))
        self.staged += len(scores)

    def swap(self, info: SwapInfo) -> int:
        """Delete the date and insert the staged run, ranked, in one transaction."""
        import psycopg

        try:
            with self.conn.transaction():
                # Two runs for the same date queue here instead of colliding on the insert.
                self.conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext('churn_scores'), %s)",
                    (int(info.scoring_date.strftime("%Y%m%d")),),
                )
                # The rank sorts the whole run: in memory, not in 4 MB spill files (default).
                self.conn.execute(f"SET LOCAL work_mem = '{SORT_MEMORY_MB}MB'")
                self.conn.execute(
                    "DELETE FROM churn_scores WHERE scoring_date = %s", (info.scoring_date,)
                )
                pause("swap", self.hook)
                self.conn.execute(
                    SWAP_INSERT.format(p="%s"),
                    (
                        info.scoring_date,
                        info.model_name,
                        info.model_version,
                        info.threshold,
                        info.run_id,
                    ),
                )
        except psycopg.errors.UniqueViolation as exc:
            raise DataValidationError(DUPLICATE_IDS) from exc
        return self.staged

    def close(self) -> None:
        """Close the session; PostgreSQL drops the temp table with it."""
        self.conn.close()


def _copy_text(scores: pd.DataFrame) -> str:
    """Render rows in COPY text format (tab-separated, ``\\N`` for NULL, escaped text)."""
    ids = [_escape(v) for v in scores["customer_id"].tolist()]
    values = scores["score"].tolist()
    flags = ["t" if h else "f" for h in scores["high_risk"].tolist()]
    reasons = ["\\N" if r is None else _escape(r) for r in scores["reasons"].tolist()]
    lines = [
        f"{i}\t{s!r}\t{h}\t{r}\n" for i, s, h, r in zip(ids, values, flags, reasons, strict=True)
    ]
    return "".join(lines)


def _escape(text: Any) -> str:
    text = str(text)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


def make_writer(url: str, hook: PausePoint | None = None) -> ScoreWriter:
    """Return the writer for the store at ``url`` (SQLite or PostgreSQL)."""
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return SqliteWriter(parsed, hook)
    if backend == "postgresql":
        return PostgresWriter(parsed, hook)
    raise ConfigError(f"Batch scoring writes to SQLite or PostgreSQL, not {backend!r}.")
