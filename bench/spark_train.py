"""Spark training against local training: wall time and peak memory of the whole process.

Each run is ``churnops train SOURCE --engine local|spark --families logistic --trials 1``
with 3 CV folds, as its own process; a sampler adds up the resident memory (RSS) of that
process and all its descendants (Spark's JVM and Python workers too) every 0.2 s and
keeps the peak. The table is synthetic (``churnops.data.synth``), written once as
Parquet under ``--cache``.

Prints each run's seconds and peak GiB, the Spark/local ratios at the sizes both engines
ran, and the crossover: the table size above which Spark's peak memory is below the local
engine's (straight lines through the measured peaks; extrapolated when the local engine
was not run at the largest size).

Run: .venv/bin/python bench/spark_train.py [--spark-rows 10000000] [--local-rows 1000000
2000000 5000000] [--spark-small 1000000] [--timeout 3600]
Every run stops by itself: a run past ``--timeout`` seconds is killed and reported.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

GIB = 1024**3
PAGE = os.sysconf("SC_PAGE_SIZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spark-rows", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--local-rows", type=int, nargs="*", default=[1_000_000, 2_000_000])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "churnops-bench"
    )
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args()

    runs = []
    for engine, sizes in (("local", args.local_rows), ("spark", args.spark_rows)):
        for rows in sizes:
            result = measure(engine, table(args.cache, rows), args.master, args.timeout)
            result["rows"] = rows
            runs.append(result)
            print(json.dumps(result), flush=True)
    report(runs)


def table(cache: Path, rows: int) -> Path:
    """Return the synthetic table of ``rows`` customers, writing it the first time."""
    from churnops.data.synth import write_synthetic

    path = cache / f"customers-{rows}.parquet"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        write_synthetic(path.with_suffix(".tmp.parquet"), rows, seed=0).rename(path)
    return path


def measure(engine: str, path: Path, master: str, timeout: float) -> dict:
    """Run one training as a child process; return its seconds, peak GiB and exit state."""
    with tempfile.TemporaryDirectory(prefix="churnops-bench-home-") as home:
        env = {
            **os.environ,
            "CHURNOPS_HOME": home,
            "CHURNOPS_CV_FOLDS": "3",
            "MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow.db",
        }
        argv = [
            sys.executable,
            "-m",
            "churnops",
            "train",
            str(path),
            "--target",
            "churn",
            "--id",
            "customer_id",
            "--families",
            "logistic",
            "--trials",
            "1",
            "--engine",
            engine,
            "--master",
            master,
            "--metrics-out",
            f"{home}/metrics.json",
            "--json",
        ]
        started = time.perf_counter()
        log = path.with_name(f"train-{engine}-{path.stem}.log")  # kept: why a run failed
        with log.open("wb") as err:
            child = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=err)
        peak = PeakSampler(child.pid)
        peak.start()
        try:
            out, _ = child.communicate(timeout=timeout)
            state = "ok" if child.returncode == 0 else f"exit {child.returncode}"
        except subprocess.TimeoutExpired:
            child.kill()  # this run's own child; its JVM dies with its stdin closed
            out, state = b"", f"killed after {timeout:.0f} s"
        seconds = time.perf_counter() - started
        peak.stop()
    summary = json.loads(out) if state == "ok" else {}
    return {
        "engine": engine,
        "state": state,
        "seconds": round(seconds, 1),
        "peak_gib": round(peak.peak / GIB, 2),
        "holdout_roc_auc": summary.get("holdout", {}).get("roc_auc"),
        "stderr": str(log),
    }


class PeakSampler(threading.Thread):
    """Sample the summed RSS of a process and its descendants (from /proc) until stopped."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.peak = pid, every, 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.every):
            self.peak = max(self.peak, tree_rss(self.pid))

    def stop(self) -> None:
        self._done.set()
        self.join()


def tree_rss(root: int) -> int:
    """Return the bytes resident in ``root`` and every process below it."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            statm = (entry / "statm").read_text().split()
        except OSError:  # the process ended while being read
            continue
        fields = stat.rsplit(")", 1)[1].split()
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        rss[pid] = int(statm[1]) * PAGE
    tree, frontier = {root}, [root]
    while frontier:
        frontier = [p for p, parent in parents.items() if parent in frontier and p not in tree]
        tree.update(frontier)
    return sum(rss.get(p, 0) for p in tree)


def report(runs: list[dict]) -> None:
    """Print the table, the ratios at shared sizes, and the memory crossover."""
    print(f"\n{'engine':<7}{'rows':>12}{'seconds':>10}{'peak GiB':>10}  state")
    for r in runs:
        print(
            f"{r['engine']:<7}{r['rows']:>12,}{r['seconds']:>10}{r['peak_gib']:>10}  {r['state']}"
        )
    done = {(r["engine"], r["rows"]): r for r in runs if r["state"] == "ok"}
    for rows in sorted({r["rows"] for r in runs}):
        local, spark = done.get(("local", rows)), done.get(("spark", rows))
        if local and spark:
            print(
                f"{rows:,} rows: spark/local time {spark['seconds'] / local['seconds']:.2f}x, "
                f"peak memory {spark['peak_gib'] / local['peak_gib']:.2f}x"
            )
    lines = {}
    for engine in ("local", "spark"):
        points = sorted((r, v["peak_gib"]) for (e, r), v in done.items() if e == engine)
        if len(points) >= 2:
            x, y = np.array(points, dtype=float).T
            lines[engine] = np.polyfit(x, y, 1)  # GiB per row, GiB at zero rows
            slope, base = lines[engine]
            print(f"{engine}: peak ≈ {base:.2f} GiB + {slope * 1e6:.3f} GiB per million rows")
    if len(lines) == 2:
        (a1, b1), (a2, b2) = lines["local"], lines["spark"]
        if a1 > a2:
            crossover = (b2 - b1) / (a1 - a2)
            print(f"crossover: Spark's peak is lower above ≈ {crossover / 1e6:.1f}M rows")
        else:
            print("crossover: none (local memory does not grow faster than Spark's)")


if __name__ == "__main__":
    main()
