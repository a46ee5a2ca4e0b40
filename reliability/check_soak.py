"""Soak: a steady load for many minutes; memory, tail latency, errors and the audit trail.

Why: leaks and slow drifts (a growing cache, a queue that never drains, audit rows lost
under sustained traffic) only show over time. After a warm-up the server's RSS must grow
less than 10%, the last third's p99 must stay within 1.5× the first third's (or within
5 ms of it: at single-digit milliseconds one scheduler hiccup on a shared 2-core machine
is a ratio, not a drift), no request may fail, and the store must hold exactly one audit
row per /v1 request and one prediction-log row per scored customer (the prediction-log
sample is set to 1.0 so the expected count is exact). The server uses its own SQLite
store, so the counts are its own.
"""

from __future__ import annotations

import statistics
import time

import sqlalchemy as sa

from reliability.common import Budget, Home, Result, make_keys, scratch, serving
from reliability.load import Background, customers, percentile, predict_requests

WARMUP_SECONDS = 20.0
P99_SLACK_SECONDS = 0.005


def run(home: Home, budget: Budget) -> Result:
    """Soak for `budget.soak_seconds` at `budget.soak_rps`."""
    started = time.monotonic()
    work = scratch("soak")
    url = f"sqlite:///{work / 'ops.db'}"
    keys = make_keys(home.settings(database_url=url), "soak")
    rss: list[tuple[float, int]] = []
    with serving(
        home, work / "server.log", CHURNOPS_DATABASE_URL=url, CHURNOPS_SERVE_LOG_SAMPLE="1.0"
    ) as server:
        headers = {"Authorization": f"Bearer {keys['scorer']}"}
        load = Background(server.url, headers, predict_requests(customers()), rate=budget.soak_rps)
        with load:
            t0 = time.monotonic()
            end = t0 + WARMUP_SECONDS + budget.soak_seconds
            while time.monotonic() < end and server.proc.poll() is None:
                rss.append((time.monotonic() - t0, server.rss_kb()))
                time.sleep(5.0)
        result = load.finish()
    # the server has exited (SIGTERM): its audit writer committed what it had
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        audit = conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one()
        predictions = conn.execute(sa.text("SELECT count(*) FROM prediction_log")).scalar_one()
    engine.dispose()
    answered = [s for s in result.samples if s.status != 0]
    # predict_requests: every 10th request is a batch of 5 customers
    scored = sum((5 if s.index % 10 == 9 else 1) for s in result.samples if s.status == 200)
    steady = [s for s in result.samples if s.start >= WARMUP_SECONDS]
    third = budget.soak_seconds / 3
    first = [s.latency for s in steady if s.start < WARMUP_SECONDS + third]
    last = [s.latency for s in steady if s.start >= WARMUP_SECONDS + 2 * third]
    p99_first, p99_last = percentile(first, 0.99), percentile(last, 0.99)
    base = [kb for t, kb in rss if WARMUP_SECONDS <= t < WARMUP_SECONDS + 60] or [rss[0][1]]
    tail = [kb for t, kb in rss if t >= WARMUP_SECONDS + budget.soak_seconds - 60] or [rss[-1][1]]
    growth = statistics.median(tail) / statistics.median(base) - 1
    errors = len(result.failed)
    kinds = sorted({f"{s.status} {s.error or ''}".strip() for s in result.failed})
    ratio = p99_last / p99_first if p99_first else 0.0
    passed = (
        growth < 0.10
        and (ratio <= 1.5 or p99_last - p99_first <= P99_SLACK_SECONDS)
        and errors == 0
        and audit == len(answered)
        and predictions == scored
    )
    return Result(
        "soak",
        f"{budget.soak_seconds / 60:.0f} min at {result.rate:.0f} req/s: RSS {growth:+.1%}, "
        f"p99 {p99_first * 1e3:.1f} → {p99_last * 1e3:.1f} ms ({ratio:.2f}×), {errors} errors, "
        f"audit {audit:,}/{len(answered):,}, prediction log {predictions:,}/{scored:,}",
        "RSS < +10%, p99 last/first third ≤ 1.5× (or +5 ms), 0 errors, audit rows = requests, "
        "prediction-log rows = customers scored (sample 1.0)",
        passed,
        f"RSS {statistics.median(base) / 1024:.0f} → {statistics.median(tail) / 1024:.0f} MiB "
        f"(medians of the first and last minute after a {WARMUP_SECONDS:.0f} s warm-up); "
        f"{len(result.samples):,} requests"
        + (f"; failed: {', '.join(kinds)[:300]}" if kinds else ""),
        time.monotonic() - started,
    )
