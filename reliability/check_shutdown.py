"""Graceful shutdown under load: SIGTERM while requests are in flight.

Why: every deploy and scale-down sends SIGTERM to a serving process that is busy. What was
already sent must still get its answer (uvicorn drains in-flight work; the lifespan then
hands buffered audit rows to the writer). Requests sent *after* the signal may be refused —
that is the load balancer's job, helped by readiness going 503 — so they are counted
apart. Each round: a fresh server, load including 1,000-customer batches (long requests),
SIGTERM mid-load, and the exit code.
"""

from __future__ import annotations

import signal
import time
from typing import Any

from reliability.common import Budget, Home, Result, Server, make_keys, scratch
from reliability.load import Background, customers


def run(home: Home, budget: Budget) -> Result:
    """`budget.shutdown_rounds` SIGTERMs under load; count failed requests sent before each."""
    started = time.monotonic()
    work = scratch("shutdown")
    keys = make_keys(home.settings(), "shutdown")
    records = customers()
    big = {"customers": [records[i % len(records)] for i in range(1000)]}

    def make(i: int) -> tuple[str, str, Any]:
        if i % 4 == 3:
            return "POST", "/v1/predict/batch", big
        return "POST", "/v1/predict", records[i % len(records)]

    in_flight = failed_in_flight = after = refused_after = 0
    exits: list[int] = []
    kinds: set[str] = set()
    for round_ in range(budget.shutdown_rounds):
        server = Server(home, work / f"server-{round_}.log")
        server.wait_ready()
        headers = {"Authorization": f"Bearer {keys['scorer']}"}
        load = Background(server.url, headers, make, rate=150.0, concurrency=48)
        with load:
            time.sleep(3.0)
            t_signal = time.perf_counter()
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(1.5)
        result = load.finish()
        exits.append(server.stop())
        for s in result.samples:
            if result.t0 + s.start < t_signal:
                in_flight += 1
                if not 200 <= s.status < 300:
                    failed_in_flight += 1
                    kinds.add(f"{s.status} {s.error or ''}".strip()[:120])
            else:
                after += 1
                refused_after += not 200 <= s.status < 300
    passed = failed_in_flight == 0 and all(code in (0, -signal.SIGTERM, 143) for code in exits)
    return Result(
        "graceful shutdown",
        f"{budget.shutdown_rounds} SIGTERMs: {failed_in_flight} of {in_flight:,} requests sent "
        f"before the signal failed",
        "0 failed in-flight requests; clean exit (0 or re-raised SIGTERM)",
        passed,
        f"exit codes {exits}; sent after the signal: {after} ({refused_after} refused, as "
        f"expected)" + (f"; failures: {'; '.join(sorted(kinds))}" if kinds else ""),
        time.monotonic() - started,
    )
