"""Benchmark the Lambda handler's cold start against a bare Mangum + FastAPI no-op.

Usage: .venv/bin/python bench/lambda_cold_start.py --home HOME [--runs 7]

A cold start is what a new sandbox pays before its first answer: import the handler's
module, build the handler (the runtime's init phase), then serve the first event. Each
run is a fresh Python process pinned to one CPU (a 1,769 MB function has one vCPU), timed
from before the import to the first response, and as a whole process (interpreter start
included). Three handlers, interleaved run by run so machine noise hits them alike:

- **bare**: ``Mangum(FastAPI())`` with one route that parses the JSON body and returns a
  constant — the floor any FastAPI-on-Lambda function pays;
- **baked**: ``churnops.serving.aws_lambda.handler`` with the champion baked into the
  task root (what ``deploy/lambda/Dockerfile`` builds when a model is baked);
- **registry**: the same handler loading the champion from the registry (the home's
  embedded SQLite MLflow store) at cold start.

The churnops events are an authenticated ``POST /v1/predict`` of the champion's example
record (a key in a SQLite store), the bare one the same body. One warm-up process per
handler first writes the bytecode caches (a Lambda image ships them precompiled). Not
measured: pulling the image into the sandbox and starting the runtime, which Lambda adds
to every handler alike.
Needs a registered champion in --home (``churnops demo --no-serve`` first).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHILD = """
import json, sys, time
started = time.perf_counter()
import importlib
module = importlib.import_module(sys.argv[1])
handler = getattr(module, "handler")
ready = time.perf_counter()
event = json.loads(sys.argv[2])
class Context:
    aws_request_id = "bench-0000"
    function_name = "bench"
    memory_limit_in_mb = 1769
response = handler(event, Context())
done = time.perf_counter()
assert response["statusCode"] == 200, response
print(json.dumps({"init_ms": (ready - started) * 1e3, "first_ms": (done - ready) * 1e3}))
"""

BARE_APP = '''
"""A FastAPI no-op behind Mangum: JSON in, a constant out."""
import json

from fastapi import FastAPI, Request
from mangum import Mangum

app = FastAPI()


@app.post("/noop")
async def noop(request: Request) -> dict:
    json.loads(await request.body())
    return {"probability": 0.5}


handler = Mangum(app, lifespan="off")
'''


def event(path: str, body: Any, key: str | None) -> dict[str, Any]:
    """An API Gateway HTTP API (v2) event, as in tests/serving/test_lambda.py."""
    text = json.dumps(body)
    headers = {"content-type": "application/json", "host": "bench.example.com"}
    if key:
        headers["x-api-key"] = key
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4"},
            "requestId": "bench",
            "routeKey": "$default",
            "stage": "$default",
        },
        "body": text,
        "isBase64Encoded": False,
    }


def run_once(module: str, payload: dict[str, Any], env: dict[str, str]) -> dict[str, float]:
    """Start one fresh process on CPU 0; return its init, first-event and process times."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, module, json.dumps(payload)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: os.sched_setaffinity(0, {0}),
    )
    wall = (time.perf_counter() - started) * 1e3
    if done.returncode != 0:
        raise SystemExit(f"{module} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_ms"] = wall
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="a home with a champion")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    from churnops.config import Settings
    from churnops.serving import aws_lambda
    from churnops.serving.auth import create_key

    home = args.home.resolve()
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    with tempfile.TemporaryDirectory(prefix="churnops-lambda-bench-") as tmp_name:
        tmp = Path(tmp_name)
        store = f"sqlite:///{tmp / 'ops.db'}"
        settings = Settings(home=home, tracking_uri=tracking, database_url=store)
        baked = aws_lambda.bake(settings, tmp / "task" / "model")
        # A record of the champion's own contract (any dataset's columns).
        customer = aws_lambda.load_baked(settings, tmp / "task" / "model").example()
        key = create_key(settings, "bench", "scorer")["key"]
        (tmp / "bare").mkdir()
        (tmp / "bare" / "bare_lambda.py").write_text(BARE_APP)

        clean = {k: v for k, v in os.environ.items() if not k.startswith(("CHURNOPS_", "MLFLOW_"))}
        common = {**clean, "CHURNOPS_DATABASE_URL": store, "CHURNOPS_SERVE_ACCESS_LOG": "false"}
        handlers = {
            "bare": (
                "bare_lambda",
                event("/noop", customer, None),
                {**clean, "PYTHONPATH": str(tmp / "bare")},
            ),
            "baked": (
                "churnops.serving.aws_lambda",
                event("/v1/predict", customer, key),
                {
                    **common,
                    "LAMBDA_TASK_ROOT": str(tmp / "task"),
                    "CHURNOPS_HOME": str(tmp / "sandbox-baked"),
                    "CHURNOPS_TRACKING_URI": f"sqlite:///{tmp / 'absent' / 'mlflow.db'}",
                },
            ),
            "registry": (
                "churnops.serving.aws_lambda",
                event("/v1/predict", customer, key),
                {
                    **common,
                    "LAMBDA_TASK_ROOT": str(tmp / "empty-task"),
                    "CHURNOPS_HOME": str(tmp / "sandbox-registry"),
                    "CHURNOPS_TRACKING_URI": tracking,
                },
            ),
        }
        for module, payload, env in handlers.values():  # warm-up: bytecode caches
            run_once(module, payload, env)
        results: dict[str, list[dict[str, float]]] = {name: [] for name in handlers}
        for _ in range(args.runs):
            for name, (module, payload, env) in handlers.items():
                results[name].append(run_once(module, payload, env))

    print(f"champion v{baked['version']}, {args.runs} fresh processes each, pinned to CPU 0\n")
    columns = ("init ms", "1st event ms", "init+1st ms", "process ms", "vs bare")
    print(f"{'handler':<10}" + "".join(f"{c:>14}" for c in columns))
    bare = statistics.median(r["init_ms"] + r["first_ms"] for r in results["bare"])
    for name, runs in results.items():
        init = statistics.median(r["init_ms"] for r in runs)
        first = statistics.median(r["first_ms"] for r in runs)
        both = statistics.median(r["init_ms"] + r["first_ms"] for r in runs)
        process = statistics.median(r["process_ms"] for r in runs)
        ratio = f"{both / bare:.1f}x"
        print(f"{name:<10}{init:>14.0f}{first:>14.1f}{both:>14.0f}{process:>14.0f}{ratio:>14}")


if __name__ == "__main__":
    main()
