"""Benchmark the scoring API against no-ops, a seed-style endpoint and `mlflow models serve`.

Usage: .venv/bin/python bench/serve.py [--home .churnops] [--seconds 5] [--rounds 5]

Everything runs on 127.0.0.1 in one go, so the ratios compare like with like: one uvicorn
worker pinned to CPU 0, the load generator pinned to CPU 1, 16 connections, the same
customer payloads. Two baselines, both printed:

- the **bare no-op**: a FastAPI app of its own in its own process that parses the JSON and
  returns a constant (no auth, no middleware) — the issue's definition;
- the **in-app no-op**: a route inside our app (auth, middleware, metrics, audit on).

The server runs as a user runs it: audit log, metrics, auth and the per-key limiter on (set
far above the load, so it decides but never refuses). Each round alternates bare, in-app,
/v1/predict and 1,000-customer batches; a round whose /v1/predict p99 is more than twice
the bare no-op's prints a warning line (the standing tail check). Load comes from ``wrk``
when installed (``apt-get install -y wrk``), else from a small asyncio HTTP/1.1 client
(slower, so absolute numbers drop, ratios stay meaningful). Each measurement is a bounded loop.
Needs a registered champion in --home (run ``churnops demo --no-serve`` first).
"""

import argparse
import asyncio
import collections
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CONNECTIONS = 16
SERVER_CPU, LOAD_CPU = 0, 1  # pinned apart, as a production box keeps the client elsewhere


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_server(port: int, home: str) -> None:
    """Run our app plus two comparison routes on the same server (1 worker)."""
    import orjson
    import pandas as pd
    import uvicorn
    from fastapi import Request, Response

    from churnops.config import Settings
    from churnops.scoring import Predictor
    from churnops.serving import create_app
    from churnops.serving.deps import ScorerKeyDep

    _pin(SERVER_CPU)
    # The limiters stay on, set far above the load: they decide on every request.
    settings = Settings(
        home=Path(home),
        serve_rate_limit=1e6,
        serve_rate_burst=1_000_000,
        serve_ip_rate_limit=1e6,
        serve_ip_rate_burst=1_000_000,
    )
    predictor = Predictor.from_registry(settings)
    app = create_app(settings, predictor=predictor)

    @app.post("/bench/noop")
    async def noop(request: Request, _principal: ScorerKeyDep) -> Response:
        orjson.loads(await request.body())  # parse the same JSON, return a constant
        return Response(b'{"probability":0.5,"churn":false}', media_type="application/json")

    import mlflow

    # The seed's way, for any model family: the registered pyfunc, a one-row DataFrame.
    mlflow.set_tracking_uri(settings.resolved_tracking_uri)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@champion")

    @app.post("/bench/seed")
    async def seed(request: Request, _principal: ScorerKeyDep) -> Response:
        payload = orjson.loads(await request.body())
        p = float(pyfunc.predict(pd.DataFrame([payload]))["probability"].iloc[0])
        return Response(orjson.dumps({"probability": p}), media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def bare_server(port: int) -> None:
    """The baseline: FastAPI's own parsing and routing, nothing of ours."""
    import orjson
    import uvicorn
    from fastapi import FastAPI, Request, Response

    _pin(SERVER_CPU)
    app = FastAPI()

    @app.post("/noop")
    async def noop(request: Request) -> Response:
        orjson.loads(await request.body())
        return Response(b'{"probability":0.5,"churn":false}', media_type="application/json")

    @app.get("/readyz")
    async def ready() -> Response:
        return Response(b"{}", media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _pin(cpu: int) -> None:
    """Run this process on one CPU (when the machine has it)."""
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


def metric_lines(base: str) -> list[str]:
    """The server's /metrics, one line each."""
    import httpx

    return httpx.get(f"{base}/metrics", timeout=10).text.splitlines()


def loop_lag(base: str) -> dict[str, float]:
    """Return how many event-loop lag probes so far were over each bound (/metrics)."""
    counts = {}
    for line in metric_lines(base):
        if line.startswith("churnops_event_loop_lag_seconds_bucket"):
            bound = line.split('le="')[1].split('"')[0]
            counts[bound] = float(line.rsplit(" ", 1)[1])
    total = counts.get("+Inf", 0.0)
    return {b: total - c for b, c in counts.items() if b != "+Inf"}


class AuditCount:
    """Audit rows the bench key's /v1/predict requests left in the store, to check the writer.

    A p99 that improves because the audit writer put its work off (a lower scheduling class,
    yielding its turn) is not an improvement: under sustained load its rows pile up in the
    server's bounded buffer and are dropped. So each predict round also reports how many of
    its requests' audit rows were in the store when the round ended.
    """

    def __init__(self, settings: Any, key_name: str) -> None:
        from churnops.store.database import get_engine
        from churnops.store.tables import AuditLog

        self.engine, self.table, self.key_name = get_engine(settings), AuditLog.__table__, key_name

    def last_id(self) -> int:
        from sqlalchemy import func, select

        with self.engine.connect() as conn:
            return conn.execute(select(func.max(self.table.c.id))).scalar() or 0

    def since(self, last_id: int) -> int:
        """Predict rows of the bench key written after row ``last_id``."""
        from sqlalchemy import func, select

        c = self.table.c
        query = select(func.count()).where(
            c.id > last_id, c.key_name == self.key_name, c.route == "/v1/predict"
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)


def audit_dropped(base: str) -> float:
    """The server's count of audit/prediction-log rows dropped so far (/metrics)."""
    for line in metric_lines(base):
        if line.startswith("churnops_audit_dropped_total"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def lag_line(over: dict[str, float]) -> str:
    """One line of :func:`loop_lag` counts (or their sum over phases)."""
    return ", ".join(f"> {float(b) * 1000:g} ms: {n:.0f}" for b, n in over.items() if n) or "none"


def wait_ready(url: str, timeout: float = 120) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"server at {url} did not come up")


def run_wrk(url: str, body: bytes, headers: dict[str, str], seconds: float) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        hdrs = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
        f.write(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(body.decode())}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
            f"{hdrs}"
            "done = function(summary, latency, requests)\n"
            '  io.write(string.format("RESULT %d %d %f %f\\n", summary.requests,'
            " summary.duration, latency:percentile(50), latency:percentile(99)))\n"
            '  io.write(string.format("ERRORS %d %d\\n", summary.errors.status,'
            " summary.errors.connect + summary.errors.read + summary.errors.write"
            " + summary.errors.timeout))\n"
            "end\n"
        )
        script = f.name
    pin = ["taskset", "-c", str(LOAD_CPU)] if shutil.which("taskset") else []
    wrk = ["wrk", "-t", "1", "-c", str(CONNECTIONS), "-d", f"{seconds:.0f}s", "-s", script]
    out = subprocess.run(
        [*pin, *wrk, url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    Path(script).unlink()
    line = next(x for x in out.splitlines() if x.startswith("RESULT")).split()
    errors = next(x for x in out.splitlines() if x.startswith("ERRORS")).split()
    requests, duration_us = int(line[1]), int(line[2])
    return {
        "requests": requests,
        "rps": requests / (duration_us / 1e6),
        "p50_ms": float(line[3]) / 1000,
        "p99_ms": float(line[4]) / 1000,
        "errors": int(errors[1]) + int(errors[2]),
    }


async def _py_load(
    host: str, port: int, path: str, body: bytes, headers: dict[str, str], seconds: float
) -> dict[str, float]:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    request = head + body
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            writer.write(request)
            status = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t)
            if b" 200 " not in status:
                errors += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "errors": errors,
    }


SERVERS: dict[int, int] = {}  # port -> server process (ours and the bare one), for CPU per request


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu(pid: int) -> float:
    """CPU seconds of the server's live child processes (the audit writer)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # its parent
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def load(url: str, body: bytes, headers: dict[str, str], seconds: float) -> dict[str, float]:
    """Drive ``url`` with 16 connections for ``seconds``; return rps, p50, p99, errors.

    For a server in ``SERVERS``, also its process' CPU µs per request and its child
    processes' (the audit writer's).
    """
    from urllib.parse import urlparse

    pid = SERVERS.get(urlparse(url).port or 0)
    before = (cpu_seconds(pid), children_cpu(pid)) if pid else (0.0, 0.0)
    if shutil.which("wrk"):
        out = run_wrk(url, body, headers, seconds)
    else:
        u = urlparse(url)
        out = asyncio.run(_py_load(u.hostname, u.port, u.path, body, headers, seconds))
    if pid:
        n = max(out["rps"] * seconds, 1.0)
        out["cpu_us"] = (cpu_seconds(pid) - before[0]) / n * 1e6
        out["child_cpu_us"] = (children_cpu(pid) - before[1]) / n * 1e6
    return out


def must_answer(url: str, body: bytes, headers: dict[str, str]) -> None:
    """Stop the bench when the server refuses a payload: refusals are fast, not throughput.

    (A champion whose contract refused one of the 1,000 batch customers once made every
    batch request a quick 422, and the bench printed that as customers scored per second.)
    """
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url, body, {**headers, "Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            answer.read()
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"{url} answered {exc.code}: {exc.read()[:400]!r}") from None


def _merge(runs: list[dict[str, float]]) -> dict[str, float]:
    """Combine rounds: mean req/s and CPU, worst p50/p99, summed errors."""
    out = {
        "rps": sum(r["rps"] for r in runs) / len(runs),
        "p50_ms": max(r["p50_ms"] for r in runs),
        "p99_ms": max(r["p99_ms"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
    }
    for key in ("cpu_us", "child_cpu_us"):
        if all(key in r for r in runs):
            out[key] = sum(r[key] for r in runs) / len(runs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=os.environ.get("CHURNOPS_HOME", ".churnops"))
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=5, help="bare/in-app/predict/batch rounds")
    parser.add_argument("--child-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_server:
        child_server(args.child_server, args.home)
        return
    if args.bare_server:
        bare_server(args.bare_server)
        return

    import orjson

    from churnops.config import Settings
    from churnops.data.demo import load_demo
    from churnops.serving.auth import create_key

    home = Path(args.home).resolve()
    settings = Settings(home=home)
    key_name = f"bench-{os.getpid()}"
    key = create_key(settings, key_name, "scorer")["key"]
    audited = AuditCount(settings, key_name)
    headers = {"Authorization": f"Bearer {key}"}
    df = load_demo().drop(columns=["churn"])
    records = [
        {k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
        for r in df.to_dict("records")
    ]
    one = orjson.dumps(records[0])
    batch = orjson.dumps({"customers": records[:1000]})
    procs = []
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    try:
        port = free_port()
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, "--home", str(home), "--child-server", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        SERVERS[port] = procs[0].pid
        bare_port = free_port()
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, "--bare-server", str(bare_port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        SERVERS[bare_port] = procs[1].pid
        bare = f"http://127.0.0.1:{bare_port}"
        mlflow_port = free_port()
        procs.append(
            subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "mlflow"),
                    "models",
                    "serve",
                    "-m",
                    "models:/churn-model@champion",
                    "--env-manager",
                    "local",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(mlflow_port),
                    "-w",
                    "1",
                ],
                env={**env, "MLFLOW_TRACKING_URI": settings.resolved_tracking_uri},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/readyz")
        wait_ready(f"{bare}/readyz")
        wait_ready(f"http://127.0.0.1:{mlflow_port}/ping")
        mlflow_body = orjson.dumps({"dataframe_records": [records[0]]})
        s = args.seconds
        warm = (("/v1/predict", one), ("/bench/noop", one), ("/v1/predict/batch", batch))
        for path, body in warm:
            must_answer(f"{base}{path}", body, headers)
            load(f"{base}{path}", body, headers, 1)  # warm-up (caches, numba, sqlite)
        load(f"{bare}/noop", one, {}, 1)
        # bare, in-app no-op, predict and batch alternate so that load from other processes
        # on the machine hits them alike; each round gives its own ratios. The slow
        # comparisons come last: requests wrk abandons at its timeout still run in their
        # servers after it stops, and would eat into whatever is measured next.
        # The lag probes count the single-request phases only: 16 concurrent 1,000-customer
        # batches, each scored on the loop, queue behind each other by design.
        rounds, batches, lag = [], [], collections.Counter()
        dropped: collections.Counter[str] = collections.Counter()  # audit rows, by phase

        def audited_load(phase: str, path: str, body: bytes) -> dict[str, Any]:
            before = audit_dropped(base)
            out = load(f"{base}{path}", body, headers, s)
            dropped[phase] += audit_dropped(base) - before
            return out

        for _ in range(args.rounds):
            before = loop_lag(base)
            bare_noop = load(f"{bare}/noop", one, {}, s)
            noop = audited_load("in-app no-op", "/bench/noop", one)
            last_id = audited.last_id()
            predict = audited_load("predict", "/v1/predict", one)
            predict["audited"] = audited.since(last_id)
            rounds.append((bare_noop, noop, predict))
            lag.update({b: n - before.get(b, 0.0) for b, n in loop_lag(base).items()})
            batches.append(audited_load("batch", "/v1/predict/batch", batch))
        results = {
            "predict": _merge([p for _, _, p in rounds]),
            "noop": _merge([n for _, n, _ in rounds]),
            "bare": _merge([b for b, _, _ in rounds]),
            "batch": _merge(batches),
            "seed": audited_load("seed", "/bench/seed", one),
            "mlflow": load(f"http://127.0.0.1:{mlflow_port}/invocations", mlflow_body, {}, s),
        }
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    r = results
    median = statistics.median
    rows = [
        (
            "/v1/predict vs bare no-op",
            median(p["rps"] / b["rps"] for b, _, p in rounds),
            ">= 0.90",
        ),
        ("/v1/predict vs in-app no-op", median(p["rps"] / n["rps"] for _, n, p in rounds), ""),
        ("/v1/predict vs seed-style", r["predict"]["rps"] / r["seed"]["rps"], ">= 10x"),
        ("/v1/predict vs mlflow serve", r["predict"]["rps"] / r["mlflow"]["rps"], ">= 10x"),
    ]
    print(
        f"load generator: {'wrk' if shutil.which('wrk') else 'python asyncio'} on CPU "
        f"{LOAD_CPU}, {CONNECTIONS} connections, {s:.0f}s each, 1 uvicorn worker on CPU "
        f"{SERVER_CPU}, loopback; server: defaults (audit ON, metrics, auth, limiters on far "
        "above the load)"
    )
    for i, (bare_noop, noop, predict) in enumerate(rounds, 1):
        print(
            f"round {i}: bare {bare_noop['rps']:6.0f} req/s p99 {bare_noop['p99_ms']:5.2f} ms | "
            f"in-app no-op {noop['rps']:6.0f} p99 {noop['p99_ms']:5.2f} | predict "
            f"{predict['rps']:6.0f} p99 {predict['p99_ms']:5.2f} ms; ratio vs bare "
            f"{predict['rps'] / bare_noop['rps']:.2f}; server CPU/request bare "
            f"{bare_noop.get('cpu_us', 0):.0f} / in-app {noop.get('cpu_us', 0):.0f} / predict "
            f"{predict.get('cpu_us', 0):.0f} µs"
            f"(+ {predict.get('child_cpu_us', 0):.0f} µs audit writer)"
        )
        if predict["p99_ms"] > 2 * bare_noop["p99_ms"]:
            print(
                f"WARNING round {i}: /v1/predict p99 {predict['p99_ms']:.2f} ms is more than "
                f"twice the bare no-op's {bare_noop['p99_ms']:.2f} ms: a tail stall is back"
            )
    for name, res in r.items():
        print(
            f"{name:>8}: {res['rps']:9.0f} req/s  p50 {res['p50_ms']:6.2f} ms  "
            f"p99 {res['p99_ms']:6.2f} ms  errors {res['errors']:.0f}"
        )
    for name, ratio, target in rows:
        print(f"{name:<28} {ratio:8.2f}  {f'(target {target})' if target else ''}")
    tails = ", ".join(f"{p['p99_ms']:.2f}" for _, _, p in rounds)
    print(f"{'p99 /v1/predict, every round':<28} {tails} ms (target <= 5 ms each)")
    print(f"{'event-loop lag probes':<28} {lag_line(dict(lag))} (single-request rounds)")
    behind = [max(0, p["requests"] - p["audited"]) for _, _, p in rounds]
    by_phase = ", ".join(f"{phase} {n:.0f}" for phase, n in dropped.items())
    print(
        f"{'audit rows behind, per round':<28} {', '.join(str(b) for b in behind)} "
        f"(requests whose row was not stored when the round ended); dropped "
        f"{dropped.total():.0f} ({by_phase})"
    )
    if dropped.total() or any(b > p["rps"] for b, (_, _, p) in zip(behind, rounds, strict=True)):
        print(
            "WARNING: the audit writer fell more than a second behind or dropped rows: it "
            "is putting work off, so this p99 is not what sustained load would see"
        )
    # refusals do not count as customers scored
    answered = [(b["rps"] - b["errors"] / args.seconds) * 1000 for b in batches]
    every = ", ".join(f"{a:.0f}" for a in answered)
    print(
        f"{'batch customers/s':<28} {median(answered):8.0f}  (target >= 100,000; "
        f"every round {every})"
    )
    print("(ratios: median of the rounds; rows above: mean req/s over the rounds, worst p99)")


if __name__ == "__main__":
    main()
