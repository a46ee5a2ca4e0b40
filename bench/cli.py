"""Whole-process CLI benchmark: what a person waits for, imports and start-up included.

    .venv/bin/python bench/cli.py [--rows 1000000] [--repeats 5]

Everything runs as a fresh process (``python -m churnops ...``), timed by wall clock with
the process's own peak RSS (``os.wait4``), median of ``--repeats`` runs, in a home of its
own under a temporary folder. The champion is bench/batch.py's: LightGBM tuned on the demo
data with 3 trials and 3 folds (seeded, so the same model: the size of the trees sets what
explaining the top customers costs, and a 2-trial model has five times the trees).

1. ``churnops score DATA.parquet`` of ``--rows`` synthetic customers into the default
   SQLite store, against the seed-style job run as a whole process: ``import mlflow``,
   ``mlflow.pyfunc.load_model("models:/churn-model@champion")``, read the Parquet file with
   pandas, predict the whole frame, ``DataFrame.to_sql`` into a SQLite table of the same
   store (same home, same tracking URI). The two alternate, one date each per repeat.
2. ``churnops models --json``, ``churnops report high-risk``, ``churnops --help`` (the
   floor: interpreter + CLI start-up), ratios against ``--help``.
3. ``churnops serve``: seconds from start until ``GET /readyz`` answers 200.
4. Compiled kernels: ``churnops score`` of a small file with numba's on-disk cache (the
   default, beside the modules) against a fresh empty ``NUMBA_CACHE_DIR`` (every kernel
   compiled again), which is what a process would pay without ``cache=True``.

Not a test: numbers are printed (history in bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path

PYTHON = sys.executable
CHURNOPS = [PYTHON, "-m", "churnops"]
TARGETS = {"models --json": 2.0, "report high-risk": 2.0, "serve -> /readyz 200": 4.0}

SEED_JOB = textwrap.dedent(
    """\
    # The seed-style batch job: MLflow's own model loading, pandas end to end.
    import sys

    import mlflow
    import pandas as pd
    import sqlalchemy as sa

    source, store_url, day = sys.argv[1:4]
    model = mlflow.pyfunc.load_model("models:/churn-model@champion")
    frame = pd.read_parquet(source)
    scores = pd.DataFrame(model.predict(frame)).assign(scoring_date=day)
    scores.to_sql("seed_scores", sa.create_engine(store_url), if_exists="append", index=False)
    """
)


class Timed:
    """One finished process: wall-clock seconds and its own peak RSS in MB."""

    def __init__(self, seconds: float, peak_mb: float) -> None:
        self.seconds = seconds
        self.peak_mb = peak_mb


def run(args: Sequence[str], env: dict[str, str], cwd: Path) -> Timed:
    """Run one process to the end; fail loudly if it fails (a bench of errors measures nothing).

    ``os.wait4`` gives this child's own peak RSS (``RUSAGE_CHILDREN`` would be the maximum
    over every child so far).
    """
    started = time.perf_counter()
    proc = subprocess.Popen(
        args, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))} failed:\n{err.decode()[-2000:]}")
    return Timed(seconds, usage.ru_maxrss / 1024)


def summary(times: list[Timed]) -> tuple[float, float]:
    """Return the median seconds and median peak RSS (MB) of repeated runs."""
    return (
        statistics.median(t.seconds for t in times),
        statistics.median(t.peak_mb for t in times),
    )


def free_port() -> int:
    """Return a loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_ready(env: dict[str, str], cwd: Path, timeout: float = 60.0) -> Timed:
    """Start ``churnops serve`` and time it until ``/readyz`` answers 200, then stop it.

    The server runs in its own session so that it and its audit writer stop together.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}/readyz"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*CHURNOPS, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while time.perf_counter() - started < timeout:
            if proc.poll() is not None:
                raise SystemExit(f"churnops serve exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return Timed(time.perf_counter() - started, 0.0)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.02)
        raise SystemExit(f"/readyz not 200 within {timeout:.0f}s")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def repeat(n: int, what: Callable[[], Timed]) -> list[Timed]:
    """Call ``what`` ``n`` times."""
    return [what() for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--small-rows", type=int, default=2_000, help="numba cache check")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="churnops-bench-cli-") as tmp:
        bench(Path(tmp), args)


def bench(tmp: Path, args: argparse.Namespace) -> None:
    """Set up a home, then time every command; print one line per measurement."""
    home = tmp / "home"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CHURNOPS_", "MLFLOW_", "NUMBA_CACHE_DIR"))
    }
    env |= {
        "CHURNOPS_HOME": str(home),
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        "CHURNOPS_CV_FOLDS": "3",
        "CHURNOPS_FAMILIES": '["lightgbm"]',
        "COLUMNS": "160",
    }
    store = f"sqlite:///{home / 'churnops.db'}"
    data, small, seed_job = tmp / "customers.parquet", tmp / "small.parquet", tmp / "seed_job.py"
    seed_job.write_text(SEED_JOB)
    telco = str(tmp / "telco.csv")
    t = time.perf_counter()
    for setup in (
        ["data", "demo", "--out", telco],
        ["train", telco, "--target", "churn", "--id", "customer_id", "--trials", "3"],
        ["data", "synth", "--rows", str(args.rows), "--out", str(data)],
        ["data", "synth", "--rows", str(args.small_rows), "--out", str(small), "--seed", "2"],
    ):
        run([*CHURNOPS, *setup, "--json"], env, tmp)
    print(f"setup (demo data, train, synth {args.rows:,} rows): {time.perf_counter() - t:.0f}s")

    day = date(2026, 1, 1)
    # One untimed run of each: .pyc files, page cache, numba's cache, MLflow's schema check.
    run([*CHURNOPS, "score", str(data), "--date", str(day), "--json"], env, tmp)
    run([PYTHON, str(seed_job), str(data), store, str(day)], env, tmp)
    ours: list[Timed] = []
    seed: list[Timed] = []
    for i in range(1, args.repeats + 1):  # alternate, so both see the same machine
        on = str(day + timedelta(days=i))
        ours.append(run([*CHURNOPS, "score", str(data), "--date", on, "--json"], env, tmp))
        seed.append(run([PYTHON, str(seed_job), str(data), store, on], env, tmp))
    (o_s, o_mb), (s_s, s_mb) = summary(ours), summary(seed)
    print(
        f"score {args.rows:,} rows -> SQLite: churnops {o_s:.2f}s ({o_mb:.0f} MB) vs "
        f"seed-style job {s_s:.2f}s ({s_mb:.0f} MB): {s_s / o_s:.2f}x faster (target >= 5x)"
    )

    commands = {
        "--help": ["--help"],
        "models --json": ["models", "--json"],
        "report high-risk": ["report", "high-risk"],
    }
    medians: dict[str, tuple[float, float]] = {}
    for name, argv in commands.items():
        run([*CHURNOPS, *argv], env, tmp)  # warm
        medians[name] = summary(repeat(args.repeats, lambda a=argv: run([*CHURNOPS, *a], env, tmp)))
    medians["serve -> /readyz 200"] = summary(repeat(args.repeats, lambda: serve_ready(env, tmp)))
    floor = medians["--help"][0]
    for name, (seconds, peak) in medians.items():
        target = f"target <= {TARGETS[name]:.1f}s" if name in TARGETS else "reference"
        memory = f", {peak:.0f} MB" if peak else ""
        print(
            f"churnops {name:<22} {seconds:5.2f}s{memory} ({seconds / floor:4.1f}x --help; "
            f"{target})"
        )

    small_score = [*CHURNOPS, "score", str(small), "--date", str(day), "--json"]
    warm = summary(repeat(args.repeats, lambda: run(small_score, env, tmp)))

    def cold() -> Timed:
        with tempfile.TemporaryDirectory(dir=tmp) as empty:
            return run(small_score, env | {"NUMBA_CACHE_DIR": empty}, tmp)

    compiled = summary(repeat(args.repeats, cold))
    print(
        f"score {args.small_rows:,} rows: kernels from numba's cache {warm[0]:.2f}s vs "
        f"compiled in the process {compiled[0]:.2f}s (cache saves {compiled[0] - warm[0]:.2f}s)"
    )


if __name__ == "__main__":
    main()
