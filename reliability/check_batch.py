"""Batch runs killed at random points (SIGKILL), on SQLite and PostgreSQL, then a rerun.

Why: a scheduled job gets killed — OOM, node drain, a deploy. docs/batch.md promises a
killed run changes nothing, the date always shows one complete run, and the next run
cleans up. Each kill is a real `churnops score` process, SIGKILLed at a uniformly random
moment of a run's measured duration (start-up, scoring, writing or the swap). A reader
thread polls `churn_scores` for the date all along: every read must show exactly one run
and every customer once (the old complete set or the new one, never a mix or a part).
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from reliability.common import (
    CHURNOPS,
    POSTGRES_URL,
    Budget,
    Home,
    Result,
    postgres_schema,
    reachable,
    scratch,
)

DAY = "2026-03-01"
ROWS = 100_000
CHUNK_ROWS = "10000"


class Reader(threading.Thread):
    """Polls the date's rows; records every read that is not one complete run."""

    def __init__(self, url: str, expected: int) -> None:
        super().__init__(daemon=True)
        self.url, self.expected = url, expected
        self.stop = threading.Event()
        self.reads = 0
        self.mixed: list[str] = []
        self.errors: list[str] = []

    def run(self) -> None:
        engine = sa.create_engine(self.url)
        query = sa.text(
            "SELECT count(*), count(DISTINCT run_id), count(DISTINCT customer_id) "
            "FROM churn_scores WHERE scoring_date = :d"
        )
        while not self.stop.is_set():
            try:
                with engine.connect() as conn:
                    rows, runs, ids = conn.execute(query, {"d": DAY}).one()
                self.reads += 1
                if (rows, runs, ids) != (self.expected, 1, self.expected):
                    self.mixed.append(f"{rows} rows, {runs} runs, {ids} ids")
            except Exception as exc:  # a reader that cannot read is a finding too
                self.errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")
            self.stop.wait(0.02)
        engine.dispose()


def _score(home: Home, url: str, source: Path, log: Path) -> subprocess.Popen[bytes]:
    env = home.env(CHURNOPS_DATABASE_URL=url, CHURNOPS_BATCH_CHUNK_ROWS=CHUNK_ROWS)
    with log.open("ab") as handle:
        return subprocess.Popen(
            [CHURNOPS, "score", str(source), "--date", DAY, "--json"],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def _one_backend(
    home: Home, url: str, kills: int, source: Path, ids: set[str], work: Path
) -> tuple[bool, str, str]:
    log = work / "score.log"
    for _ in range(2):  # the old complete set; the second run, warm, times a run
        t = time.monotonic()
        first = _score(home, url, source, log)
        if first.wait(600) != 0:
            return False, f"a full run failed (exit {first.returncode}); see {log}", ""
        duration = time.monotonic() - t
    reader = Reader(url, len(ids))
    reader.start()
    rng = random.Random(12)
    killed = finished = 0
    points = []
    for _ in range(3 * kills):  # bounded: a run that beats its kill is retried
        if killed == kills:
            break
        proc = _score(home, url, source, log)
        at = rng.uniform(0.3, 0.98) * duration  # most of a run before 0.3 is start-up
        try:
            proc.wait(at)
            finished += 1  # it beat the kill
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(60)
            killed += 1
            points.append(at)
    final = _score(home, url, source, log)
    final_code = final.wait(600)
    time.sleep(0.5)
    reader.stop.set()
    reader.join(30)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        stored = [
            r[0]
            for r in conn.execute(
                sa.text("SELECT customer_id FROM churn_scores WHERE scoring_date = :d"), {"d": DAY}
            )
        ]
        running = conn.execute(
            sa.text("SELECT count(*) FROM scoring_runs WHERE status = 'running'")
        ).scalar_one()
    engine.dispose()
    once = len(stored) == len(ids) and set(stored) == ids
    ok = (
        killed == kills
        and final_code == 0
        and once
        and not reader.mixed
        and not reader.errors
        and running == 0
    )
    figure = (
        f"{killed} killed; rerun: {len(stored):,}/{len(ids):,} customers, each once: {once}; "
        f"{len(reader.mixed)} mixed/partial of {reader.reads:,} reads"
    )
    text = (
        f"{finished} more finished before their kill; a run ≈ {duration:.1f} s, kill points "
        f"{min(points or [0]):.1f}–{max(points or [0]):.1f} s; rerun exit {final_code}; "
        f"{len(reader.errors)} reader errors; {running} runs left 'running'"
    )
    if reader.mixed:
        text += f" (first: {reader.mixed[0]})"
    if reader.errors:
        text += f" (first error: {reader.errors[0]})"
    return ok, figure, text


def run(home: Home, budget: Budget) -> list[Result]:
    """One row per backend."""
    from tests.factories import make_customers

    work = scratch("batch")
    frame = make_customers(ROWS, seed=5)
    source = work / "customers.parquet"
    frame.to_parquet(source, index=False)
    ids = set(frame["customer_id"].astype(str))
    results = []
    for backend in ("sqlite", "postgresql"):
        started = time.monotonic()
        target = f"{budget.batch_kills} SIGKILLs, rerun: every customer once, no mixed read"
        if backend == "postgresql" and not reachable(POSTGRES_URL):
            results.append(Result("batch kills: postgresql", "not run", target, False,
                                  f"PostgreSQL not reachable at {POSTGRES_URL}"))  # fmt: skip
            continue
        folder = work / backend
        folder.mkdir()
        if backend == "sqlite":
            ok, figure, text = _one_backend(
                home, f"sqlite:///{folder / 'store.db'}", budget.batch_kills, source, ids, folder
            )
        else:
            with postgres_schema() as url:
                ok, figure, text = _one_backend(home, url, budget.batch_kills, source, ids, folder)
        results.append(
            Result(
                f"batch kills: {backend}",
                figure,
                target,
                ok,
                text,
                time.monotonic() - started,
            )
        )
    return results
