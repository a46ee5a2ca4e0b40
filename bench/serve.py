"""Benchmark the scoring API against a no-op, a seed-style endpoint and `mlflow models serve`.

Usage: .venv/bin/python bench/serve.py [--home .churnops] [--seconds 5]

Everything runs on 127.0.0.1 in one go, so the ratios compare like with like: one uvicorn
worker, 16 connections, the same customer payloads. Load comes from ``wrk`` when it is
installed (``apt-get install -y wrk``), else from a small asyncio HTTP/1.1 client (slower,
so absolute numbers drop, ratios stay meaningful). Each measurement is a bounded loop.
Needs a registered champion in --home (run ``churnops demo --no-serve`` first).
"""

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONNECTIONS = 16
ROUNDS = 2  # predict/no-op alternations


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
    from churnops.serving.deps import ApiKeyDep

    settings = Settings(home=Path(home), serve_rate_limit=0.0, serve_ip_rate_limit=0.0)
    predictor = Predictor.from_registry(settings)
    app = create_app(settings, predictor=predictor)
    model = predictor.model

    @app.post("/bench/noop")
    async def noop(request: Request, _principal: ApiKeyDep) -> Response:
        orjson.loads(await request.body())  # parse the same JSON, return a constant
        return Response(b'{"probability":0.5,"churn":false}', media_type="application/json")

    import lightgbm

    booster = lightgbm.Booster(model_str=model.estimator.model_text)

    @app.post("/bench/seed")
    async def seed(request: Request, _principal: ApiKeyDep) -> Response:
        payload = orjson.loads(await request.body())
        frame = pd.DataFrame([payload])  # the seed's way: a one-row DataFrame, then the
        p = booster.predict(model.encoder.transform(frame))[0]  # the library's own predict
        return Response(orjson.dumps({"probability": float(p)}), media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


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
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(CONNECTIONS), "-d", f"{seconds:.0f}s", "-s", script, url],
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
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "errors": errors,
    }


SERVER_PID: int | None = None
SERVER_PORT = 0  # the API server process, for CPU per request


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

    With ``SERVER_PID`` set (our API), also the server process' CPU µs per request and its
    child processes' (the audit writer's).
    """
    pid = SERVER_PID if f":{SERVER_PORT}/" in url else None
    before = (cpu_seconds(pid), children_cpu(pid)) if pid else (0.0, 0.0)
    if shutil.which("wrk"):
        out = run_wrk(url, body, headers, seconds)
    else:
        from urllib.parse import urlparse

        u = urlparse(url)
        out = asyncio.run(_py_load(u.hostname, u.port, u.path, body, headers, seconds))
    if pid:
        n = max(out["rps"] * seconds, 1.0)
        out["cpu_us"] = (cpu_seconds(pid) - before[0]) / n * 1e6
        out["child_cpu_us"] = (children_cpu(pid) - before[1]) / n * 1e6
    return out


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
    parser.add_argument("--child-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_server:
        child_server(args.child_server, args.home)
        return

    import orjson

    global SERVER_PID, SERVER_PORT
    from churnops.config import Settings
    from churnops.data.demo import load_demo
    from churnops.serving.auth import create_key

    home = Path(args.home).resolve()
    settings = Settings(home=home)
    key = create_key(settings, f"bench-{os.getpid()}", "scorer")["key"]
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
        SERVER_PID, SERVER_PORT = procs[0].pid, port
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
        wait_ready(f"http://127.0.0.1:{mlflow_port}/ping")
        mlflow_body = orjson.dumps({"dataframe_records": [records[0]]})
        s = args.seconds
        warm = (("/v1/predict", one), ("/bench/noop", one), ("/v1/predict/batch", batch))
        for path, body in warm:
            load(f"{base}{path}", body, headers, 1)  # warm-up (caches, numba, sqlite)
        # predict and no-op alternate (noop, predict, noop, predict) so that load from other
        # processes on the machine hits both alike; each round gives its own ratio.
        rounds = []
        for _ in range(ROUNDS):
            noop = load(f"{base}/bench/noop", one, headers, s)
            rounds.append((noop, load(f"{base}/v1/predict", one, headers, s)))
        results = {
            "predict": _merge([p for _, p in rounds]),
            "noop": _merge([n for n, _ in rounds]),
            "seed": load(f"{base}/bench/seed", one, headers, s),
            "mlflow": load(f"http://127.0.0.1:{mlflow_port}/invocations", mlflow_body, {}, s),
            "batch": load(f"{base}/v1/predict/batch", batch, headers, s),
        }
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    r = results
    rows = [
        ("/v1/predict vs no-op", r["predict"]["rps"] / r["noop"]["rps"], ">= 0.70"),
        ("/v1/predict vs seed-style", r["predict"]["rps"] / r["seed"]["rps"], ">= 10x"),
        ("/v1/predict vs mlflow serve", r["predict"]["rps"] / r["mlflow"]["rps"], ">= 10x"),
    ]
    print(
        f"load generator: {'wrk' if shutil.which('wrk') else 'python asyncio'}, "
        f"{CONNECTIONS} connections, {s:.0f}s each, 1 uvicorn worker, loopback; "
        "server settings: defaults (audit ON, prediction log 5%) except rate limit off"
    )
    for i, (noop, predict) in enumerate(rounds, 1):
        print(
            f"round {i}: noop {noop['rps']:7.0f} req/s, predict {predict['rps']:7.0f} req/s,"
            f" ratio {predict['rps'] / noop['rps']:.2f}, predict p99 {predict['p99_ms']:.2f} ms;"
            f" server CPU/request: noop {noop.get('cpu_us', 0):.0f} µs,"
            f" predict {predict.get('cpu_us', 0):.0f} µs"
            f" (+ {predict.get('child_cpu_us', 0):.0f} µs in the audit writer process)"
        )
    for name, res in r.items():
        print(
            f"{name:>8}: {res['rps']:9.0f} req/s  p50 {res['p50_ms']:6.2f} ms  "
            f"p99 {res['p99_ms']:6.2f} ms  errors {res['errors']:.0f}"
        )
    for name, ratio, target in rows:
        print(f"{name:<28} {ratio:8.2f}  (target {target})")
    print(f"{'p99 /v1/predict':<28} {r['predict']['p99_ms']:8.2f} ms (target <= 10 ms)")
    print(f"{'batch customers/s':<28} {r['batch']['rps'] * 1000:8.0f}  (target >= 50,000)")
    print("(predict/noop rows: mean req/s over the rounds, worst p50/p99)")


if __name__ == "__main__":
    main()
