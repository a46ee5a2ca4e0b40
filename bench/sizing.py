"""Sizing: what churnops costs to run, measured as the processes a scheduler runs.

    .venv/bin/python bench/sizing.py --customers 1000000            # ~10-20 min on 2 cores
    .venv/bin/python bench/sizing.py --customers 1000000 --postgres  # + the store on PostgreSQL
    .venv/bin/python bench/sizing.py --json > sizing.json            # one JSON object
    .venv/bin/python bench/sizing.py --from-json sizing.json --assume requests_per_customer_month=20

Why whole processes: a daily ``churnops score`` pays its imports, the registry read and the
model load every time, and that is what a bill counts. Each job runs as a fresh
``python -m churnops ...`` child in a home of its own (a temporary folder); its resource
usage comes from ``os.wait4`` — the same accounting as ``getrusage(RUSAGE_CHILDREN)`` and
``/usr/bin/time -v``, but for that one child rather than the sum over every child so far:

- **CPU-seconds** = ``ru_utime + ru_stime``: every thread of the process (numba's scoring
  threads, LightGBM's and XGBoost's tuning threads) and any child it waited for;
- **peak memory** = ``ru_maxrss``: the largest resident set the process reached.

What is measured:

1. ``churnops train`` of the demo table (IBM Telco, 7,043 customers) with the default
   budget (every family, 12 trials, 5 folds): per training. Its champion scores below.
2. ``churnops score`` of ``--customers`` synthetic customers (``churnops data synth``,
   Parquet) into the default SQLite store, a new date per run (after one untimed run of
   2,000 rows: .pyc files, numba's on-disk cache); the median of ``--repeats``. The store's
   live size before and after each run gives the bytes one customer-date costs.
   With ``--postgres``, once more into a throwaway PostgreSQL schema (bytes per
   customer-date there, from ``pg_total_relation_size``; the server's own CPU is not in
   the process's figure).
3. ``churnops monitor`` of ``--monitor-rows`` of those customers against the champion's
   training snapshot, without and with ``--report`` (the scheduled jobs write one).
4. The bytes an API call leaves in the store: audit and prediction-log rows shaped as the
   API writes them for one ``/v1/predict``, written through the audit writer's own
   ``StoreWriter`` (no server is started).
5. API requests/s per core is an input, not a measurement: ``bench/serve.py`` measures it
   (another process pinned per core); the default is its last published figure
   (docs/serving.md: about 4,000 req/s for one worker, server CPU 190-255 us a request).

Then the monthly bill for 1M, 10M and 100M customers from those numbers and the
assumptions in ``ASSUMPTIONS`` (prices, schedules, traffic; each can be changed with
``--assume NAME=VALUE``), every line with its formula. The machine this runs on is
usually a shared 2-core VM: wall-clock seconds there drift with other people's load, CPU
seconds less (not nothing: threads spin while they wait for a core), which is why the bill
is built from CPU-seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

PYTHON = sys.executable
CHURNOPS = [PYTHON, "-m", "churnops"]
POSTGRES_URL = os.environ.get(
    "CHURNOPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SCALES = (1_000_000, 10_000_000, 100_000_000)
HOURS_PER_MONTH = 730.0

# The API's throughput per core: bench/serve.py's last published run (docs/serving.md,
# "Performance": one worker on a 2-core machine, LightGBM champion of 437 trees, audit on,
# 5% prediction log). bench/serve.py is not run here: it needs the cores to itself.
API_RPS_PER_CORE = 4000.0

# Every assumption of the bill. Prices: on-demand list prices, AWS us-east-1, Linux, as
# we assume them for 2026 (unchanged since these types launched, as far as we know):
# check the provider's price page before quoting a bill.
ASSUMPTIONS: dict[str, float] = {
    # Batch jobs (score, monitor, train) run as containers billed per vCPU-hour and
    # GB-hour: AWS Fargate's Linux/x86 prices.
    "vcpu_hour": 0.04048,
    "gb_hour": 0.004445,
    # The API: c7i.large instances (2 vCPU, 4 GiB; one worker per vCPU), always on.
    "api_instance_hour": 0.08925,
    "api_instance_vcpus": 2,
    "api_min_instances": 2,  # two, so one can fail or be replaced
    "api_target_utilisation": 0.5,  # headroom for bursts and a lost instance
    # MLflow tracking server: one c7i.large, always on (its database shares the store's).
    "mlflow_instance_hour": 0.08925,
    # Application Load Balancer hours (LCUs not counted: they stay small at these rates).
    "load_balancer_hour": 0.0225,
    # Managed PostgreSQL (RDS, single-AZ) per scale, and its gp3 storage per GB-month.
    "postgres_hour_1m": 0.065,  # db.t4g.medium: 2 vCPU, 4 GiB
    "postgres_hour_10m": 0.168,  # db.m7g.large: 2 vCPU, 8 GiB
    "postgres_hour_100m": 0.672,  # db.m7g.2xlarge: 8 vCPU, 32 GiB
    "storage_gb_month": 0.115,
    # Schedules: score every customer daily, monitor weekly, train monthly.
    "scoring_runs_month": 30,
    "monitoring_runs_month": 52 / 12,
    "trainings_month": 1,
    # Monitoring reads at most this many customers (a sample beyond it: drift statistics
    # against a reference of at most 100,000 rows gain nothing from more, and
    # `churnops monitor` holds its table in memory).
    "monitor_max_rows": 1_000_000,
    # Online traffic: API requests per customer per month, and peak over average rate.
    "requests_per_customer_month": 4,
    "peak_to_average": 5,
    # What the store keeps: scoring dates and months of audit rows.
    "retention_days": 90,
    "audit_retention_months": 3,
    "prediction_log_sample": 0.05,  # CHURNOPS_SERVE_LOG_SAMPLE's default
}


@dataclass
class Usage:
    """One finished process: what it took."""

    wall_s: float
    cpu_s: float
    user_s: float
    sys_s: float
    peak_mb: float


def run(args: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[Usage, str]:
    """Run one process to its end and return its usage and stdout; fail loudly if it fails.

    stdout and stderr go to files, so the child is reaped by ``os.wait4`` (which returns its
    rusage) and not by ``communicate()`` (which would discard it).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(args), env=env, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))} exited {proc.returncode}:\n{stderr[-3000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return Usage(wall, cpu, usage.ru_utime, usage.ru_stime, usage.ru_maxrss / 1024), stdout


def median_usage(runs: list[Usage]) -> Usage:
    """Return the run with the median CPU-seconds (its own wall and peak, not a mix)."""
    return sorted(runs, key=lambda u: u.cpu_s)[len(runs) // 2]


def sqlite_live_bytes(path: Path) -> int:
    """Return the bytes of an SQLite file that hold data (pages in use, WAL checkpointed)."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)


def pg_bytes(url: str, schema: str, tables: Sequence[str]) -> int:
    """Return the bytes PostgreSQL uses for ``tables`` of ``schema`` (indexes and TOAST too)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                sum(
                    conn.execute(
                        sa.text("SELECT pg_total_relation_size(CAST(:t AS regclass))"),
                        {"t": f"{schema}.{table}"},
                    ).scalar_one()
                    for table in tables
                )
            )
    finally:
        engine.dispose()


def pg_schema(base_url: str) -> tuple[str, str]:
    """Create a throwaway schema; return it and a URL whose search_path is that schema."""
    import sqlalchemy as sa

    schema = f"sizing_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    return schema, f"{base_url}?options=-csearch_path%3D{schema}"


def drop_pg_schema(base_url: str, schema: str) -> None:
    """Drop a schema :func:`pg_schema` made."""
    import sqlalchemy as sa

    engine = sa.create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


def api_rows(source: Path, n: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Return ``n`` audit rows and ``n`` prediction-log rows shaped like one ``/v1/predict``.

    The tuples are what the server hands its audit writer (AUDIT_FIELDS and
    PREDICTION_FIELDS order): one customer id, one probability, a SHA-256 digest, a
    16-hex request id, the customer's record as the features.
    """
    import hashlib
    import random

    import pyarrow.parquet as pq

    records = pq.ParquetFile(source).read_row_group(0).slice(0, n).to_pylist()
    rng = random.Random(0)
    audits, predictions = [], []
    at = time.time()
    for i, record in enumerate(records):
        record.pop("churn", None)
        rid = f"{rng.getrandbits(64):016x}"
        customer = str(record["customer_id"])
        p = rng.random()
        digest = hashlib.sha256(json.dumps(record).encode()).hexdigest()
        request = (at + i, rid, "crm", "/v1/predict", 200, 2.5 + p)
        audits.append((*request, [customer], 1, digest, "1", "champion", [round(p, 6)]))
        predictions.append(
            (at + i, rid, "churn-model", "1", "champion", customer, record, p, p >= 0.5)
        )
    return audits, predictions


def api_row_bytes(url: str, source: Path, n: int, measure: Any) -> dict[str, float]:
    """Write ``n`` audit rows, then ``n`` prediction rows; return the bytes each row adds."""
    from churnops.store.audit_writer import StoreWriter

    audits, predictions = api_rows(source, n)
    writer = StoreWriter(url)
    writer.write([], [])  # migrates the store: not part of the rows' size
    before = measure()
    for start in range(0, n, 5000):
        writer.write(audits[start : start + 5000], [])
    middle = measure()
    for start in range(0, n, 5000):
        writer.write([], predictions[start : start + 5000])
    after = measure()
    writer.engine.dispose()
    return {"audit": (middle - before) / n, "prediction": (after - middle) / n}


def measure_all(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Set up a home, run every job as a process, and return the measurements."""
    home = tmp / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHURNOPS_", "MLFLOW_"))}
    env |= {
        "CHURNOPS_HOME": str(home),
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        "COLUMNS": "160",
    }
    if args.trials is not None:
        env["CHURNOPS_TRIALS"] = str(args.trials)
    found: dict[str, Any] = {"customers": args.customers, "cpus": os.cpu_count()}
    telco, data, small = tmp / "telco.csv", tmp / "customers.parquet", tmp / "small.parquet"
    say = print if not args.json else (lambda *a, **k: None)

    run([*CHURNOPS, "data", "demo", "--out", str(telco), "--json"], env, tmp)
    say("training on the demo table (default budget) ...", flush=True)
    train, out = run(
        [*CHURNOPS, "train", str(telco), "--target", "churn", "--id", "customer_id", "--json"],
        env,
        tmp,
    )
    summary = json.loads(out[out.index("{") :])
    found["train"] = asdict(train) | {
        "family": summary["family"],
        "rows": summary["rows"],
        "trials": args.trials or "default (12)",
    }

    say(f"synthesising {args.customers:,} customers ...", flush=True)
    synth = [*CHURNOPS, "data", "synth", "--json"]
    synthesis, _ = run([*synth, "--rows", str(args.customers), "--out", str(data)], env, tmp)
    found["synth"] = asdict(synthesis)
    run([*synth, "--rows", "2000", "--out", str(small), "--seed", "2"], env, tmp)

    day = date(2026, 1, 1)
    run([*CHURNOPS, "score", str(small), "--date", str(day), "--json"], env, tmp)  # warm-up
    # A run's fixed cost (imports, registry, model load, the store) is paid once per run
    # whatever the rows: a 2,000-row run measures it, so the bill does not multiply it.
    fixed, _ = run([*CHURNOPS, "score", str(small), "--date", str(day), "--json"], env, tmp)
    found["score_fixed"] = asdict(fixed) | {"rows": 2000}
    store = home / "churnops.db"
    scores, grown = [], []
    for i in range(1, args.repeats + 1):
        say(f"scoring {args.customers:,} customers, run {i} of {args.repeats} ...", flush=True)
        before = sqlite_live_bytes(store)
        usage, _ = run(
            [*CHURNOPS, "score", str(data), "--date", str(day + timedelta(days=i)), "--json"],
            env,
            tmp,
        )
        scores.append(usage)
        grown.append(sqlite_live_bytes(store) - before)
    found["score"] = asdict(median_usage(scores)) | {
        "runs_cpu_s": [round(u.cpu_s, 2) for u in scores],
        "sqlite_bytes_per_customer_date": statistics.median(grown) / args.customers,
    }

    monitor_source = data
    if args.monitor_rows != args.customers:
        monitor_source = tmp / "monitor.parquet"
        run([*synth, "--rows", str(args.monitor_rows), "--out", str(monitor_source)], env, tmp)
    say(f"monitoring {args.monitor_rows:,} customers (without, then with --report) ...")
    monitor, _ = run([*CHURNOPS, "monitor", str(monitor_source), "--json"], env, tmp)
    report = tmp / "report.html"
    reported, _ = run(
        [*CHURNOPS, "monitor", str(monitor_source), "--report", str(report), "--json"], env, tmp
    )
    found["monitor"] = asdict(monitor) | {"rows": args.monitor_rows}
    found["monitor_report"] = asdict(reported) | {"rows": args.monitor_rows}

    say("bytes per API call in the store ...", flush=True)
    found["api_bytes_sqlite"] = api_row_bytes(
        f"sqlite:///{tmp / 'api.db'}", small, 2000, lambda: sqlite_live_bytes(tmp / "api.db")
    )
    if args.postgres:
        found |= measure_postgres(args.postgres, env, tmp, data, small, args.customers, day)
        say("PostgreSQL measured.", flush=True)
    return found


def measure_postgres(
    base_url: str, env: dict[str, str], tmp: Path, data: Path, small: Path, rows: int, day: date
) -> dict[str, Any]:
    """Score once into a throwaway PostgreSQL schema; return usage and bytes per row there."""
    schema, url = pg_schema(base_url)
    try:
        pg_env = env | {"CHURNOPS_DATABASE_URL": url}
        run([*CHURNOPS, "db", "upgrade"], pg_env, tmp)
        tables = ("run_scores", "customer_keys")
        before = pg_bytes(base_url, schema, tables)
        usage, _ = run([*CHURNOPS, "score", str(data), "--date", str(day), "--json"], pg_env, tmp)
        stored = pg_bytes(base_url, schema, tables) - before
        api = api_row_bytes(
            url,
            small,
            2000,
            lambda: pg_bytes(base_url, schema, ("audit_log", "prediction_log")),
        )
    finally:
        drop_pg_schema(base_url, schema)
    return {
        "score_postgres": asdict(usage) | {"bytes_per_customer_date": stored / rows},
        "api_bytes_postgres": api,
    }


def inputs_from(found: dict[str, Any], rps_per_core: float) -> dict[str, float]:
    """Return the figures the bill is built from, per unit of work, from the measurements.

    A scoring run costs a fixed part (imports, registry, model, store: what a 2,000-row
    run takes) plus a part per customer, so scaling a run to 100M customers multiplies only
    the second. Monitoring is per 1M rows read; training per training.
    """
    fixed, score = found["score_fixed"], found["score"]
    rows_m = (found["customers"] - fixed["rows"]) / 1e6
    monitor = found["monitor_report"]
    monitor_m = monitor["rows"] / 1e6
    train = found["train"]
    pg = found.get("score_postgres")
    stored = pg["bytes_per_customer_date"] if pg else score["sqlite_bytes_per_customer_date"]
    api = found.get("api_bytes_postgres") or found["api_bytes_sqlite"]
    return {
        "score_fixed_cpu_s": round(fixed["cpu_s"], 2),
        "score_fixed_wall_s": round(fixed["wall_s"], 2),
        "score_cpu_s_per_1m": round((score["cpu_s"] - fixed["cpu_s"]) / rows_m, 2),
        "score_wall_s_per_1m": round((score["wall_s"] - fixed["wall_s"]) / rows_m, 2),
        "score_peak_mb": round(score["peak_mb"]),
        "monitor_cpu_s_per_1m": round(monitor["cpu_s"] / monitor_m, 2),
        "monitor_wall_s_per_1m": round(monitor["wall_s"] / monitor_m, 2),
        "monitor_peak_mb": round(monitor["peak_mb"]),
        "train_cpu_s": round(train["cpu_s"], 1),
        "train_wall_s": round(train["wall_s"], 1),
        "train_peak_mb": round(train["peak_mb"]),
        "bytes_per_customer_date": round(stored, 1),
        "bytes_per_audit_row": round(api["audit"], 1),
        "bytes_per_prediction_row": round(api["prediction"], 1),
        "api_rps_per_core": rps_per_core,
    }


def bill(i: dict[str, float], a: dict[str, float]) -> dict[str, Any]:
    """Return the monthly bill per scale: one line per item, its formula and its dollars.

    ``i`` are :func:`inputs_from`'s figures, ``a`` the assumptions. Jobs are billed for
    the CPU-seconds they used (a container whose vCPUs stay busy) and for their peak
    memory over their wall-clock time; always-on services by the hour.
    """
    vcpu, gb = a["vcpu_hour"], a["gb_hour"]
    scales: dict[str, Any] = {}
    for n in SCALES:
        m = n / 1e6
        lines: list[dict[str, Any]] = []

        def line(item: str, formula: str, dollars: float, lines: list[dict[str, Any]] = lines):
            lines.append({"item": item, "formula": formula, "usd": round(dollars, 2)})

        runs = a["scoring_runs_month"]
        cpu_s = i["score_fixed_cpu_s"] + i["score_cpu_s_per_1m"] * m
        wall_h = runs * (i["score_fixed_wall_s"] + i["score_wall_s_per_1m"] * m) / 3600
        score_gb = i["score_peak_mb"] / 1024
        line(
            "daily scoring",
            f"{runs:g} runs x ({i['score_fixed_cpu_s']:g} + {i['score_cpu_s_per_1m']:g} "
            f"x {m:g}) CPU-s = {runs * cpu_s / 3600:,.2f} vCPU-h x ${vcpu}"
            f" + {score_gb:.2f} GB x {wall_h:,.2f} h x ${gb}",
            runs * cpu_s / 3600 * vcpu + score_gb * wall_h * gb,
        )
        mon_m = min(n, a["monitor_max_rows"]) / 1e6
        runs = a["monitoring_runs_month"]
        cpu_h = runs * i["monitor_cpu_s_per_1m"] * mon_m / 3600
        wall_h = runs * i["monitor_wall_s_per_1m"] * mon_m / 3600
        mon_gb = i["monitor_peak_mb"] / 1024
        line(
            "weekly monitoring",
            f"{runs:.2f} runs x {i['monitor_cpu_s_per_1m']:g} CPU-s x {mon_m:g}M rows = "
            f"{cpu_h:.2f} vCPU-h x ${vcpu} + {mon_gb:.2f} GB x {wall_h:.2f} h x ${gb}",
            cpu_h * vcpu + mon_gb * wall_h * gb,
        )
        runs = a["trainings_month"]
        cpu_h = runs * i["train_cpu_s"] / 3600
        wall_h = runs * i["train_wall_s"] / 3600
        train_gb = i["train_peak_mb"] / 1024
        line(
            "monthly training",
            f"{runs:g} x {i['train_cpu_s']:g} CPU-s = {cpu_h:.2f} vCPU-h x ${vcpu}"
            f" + {train_gb:.2f} GB x {wall_h:.2f} h x ${gb}",
            cpu_h * vcpu + train_gb * wall_h * gb,
        )
        requests = n * a["requests_per_customer_month"]
        peak_rps = requests / (HOURS_PER_MONTH * 3600) * a["peak_to_average"]
        cores = peak_rps / i["api_rps_per_core"] / a["api_target_utilisation"]
        instances = max(a["api_min_instances"], math.ceil(cores / a["api_instance_vcpus"]))
        line(
            "API instances",
            f"peak {peak_rps:,.0f} req/s / {i['api_rps_per_core']:,.0f} per core / "
            f"{a['api_target_utilisation']:g} = {cores:.2f} cores -> {instances:g} x "
            f"{HOURS_PER_MONTH:g} h x ${a['api_instance_hour']}",
            instances * HOURS_PER_MONTH * a["api_instance_hour"],
        )
        line(
            "load balancer",
            f"{HOURS_PER_MONTH:g} h x ${a['load_balancer_hour']}",
            HOURS_PER_MONTH * a["load_balancer_hour"],
        )
        line(
            "MLflow server",
            f"{HOURS_PER_MONTH:g} h x ${a['mlflow_instance_hour']}",
            HOURS_PER_MONTH * a["mlflow_instance_hour"],
        )
        pg_hour = a[f"postgres_hour_{m:g}m"]
        line(
            "PostgreSQL instance",
            f"{HOURS_PER_MONTH:g} h x ${pg_hour}",
            HOURS_PER_MONTH * pg_hour,
        )
        scores_gb = n * a["retention_days"] * i["bytes_per_customer_date"] / 1e9
        call = i["bytes_per_audit_row"] + a["prediction_log_sample"] * i["bytes_per_prediction_row"]
        calls_gb = requests * a["audit_retention_months"] * call / 1e9
        line(
            "PostgreSQL storage",
            f"({m:g}M x {a['retention_days']:g} days x {i['bytes_per_customer_date']:g} B"
            f" = {scores_gb:,.1f} GB) + ({requests / 1e6:,.0f}M calls x "
            f"{a['audit_retention_months']:g} months x {call:.0f} B = "
            f"{calls_gb:,.1f} GB), x ${a['storage_gb_month']} per GB-month",
            (scores_gb + calls_gb) * a["storage_gb_month"],
        )
        scales[f"{m:g}M"] = {
            "lines": lines,
            "total_usd": round(sum(item["usd"] for item in lines), 2),
        }
    return {"inputs": i, "assumptions": a, "scales": scales}


def print_tables(found: dict[str, Any], cost: dict[str, Any]) -> None:
    """Print the measurements and the bill as rich tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200)
    per_m = found["customers"] / 1e6
    table = Table(title=f"Measured ({os.cpu_count()} CPUs; CPU-s = user + sys of the process)")
    for column in ("job", "rows", "wall s", "CPU-s", "CPU-s per 1M", "peak MB"):
        table.add_column(column, justify="left" if column == "job" else "right")

    def row(job: str, usage: dict[str, Any], rows: float | None) -> None:
        per = f"{usage['cpu_s'] / (rows / 1e6):.1f}" if rows else "-"
        table.add_row(
            job,
            f"{rows:,.0f}" if rows else "-",
            f"{usage['wall_s']:.1f}",
            f"{usage['cpu_s']:.1f}",
            per,
            f"{usage['peak_mb']:,.0f}",
        )

    train = found["train"]
    row(f"churnops train (demo table, {train['family']} won)", train, None)
    row("churnops score, 2,000 rows (a run's fixed cost)", found["score_fixed"], None)
    row("churnops score -> SQLite (median)", found["score"], per_m * 1e6)
    if "score_postgres" in found:
        row("churnops score -> PostgreSQL", found["score_postgres"], per_m * 1e6)
    row("churnops monitor", found["monitor"], found["monitor"]["rows"])
    row("churnops monitor --report", found["monitor_report"], found["monitor_report"]["rows"])
    console.print(table)
    inputs = cost["inputs"]
    console.print(
        f"Scoring: {inputs['score_fixed_cpu_s']:.1f} CPU-s per run + "
        f"{inputs['score_cpu_s_per_1m']:.1f} CPU-s per 1M customers. "
        f"SQLite: {found['score']['sqlite_bytes_per_customer_date']:.0f} B per customer-date. "
        f"Stored: {inputs['bytes_per_customer_date']:.0f} B per customer-date "
        f"({'PostgreSQL' if 'score_postgres' in found else 'SQLite'}); "
        f"{inputs['bytes_per_audit_row']:.0f} B per audit row, "
        f"{inputs['bytes_per_prediction_row']:.0f} B per prediction-log row. "
        f"API: {inputs['api_rps_per_core']:,.0f} req/s per core (input, --api-rps-per-core)."
    )
    bill_table = Table(title="Monthly bill (USD)")
    bill_table.add_column("item")
    for label in cost["scales"]:
        bill_table.add_column(label, justify="right")
    items = [line["item"] for line in next(iter(cost["scales"].values()))["lines"]]
    for i, item in enumerate(items):
        bill_table.add_row(
            item, *(f"{scale['lines'][i]['usd']:,.2f}" for scale in cost["scales"].values())
        )
    bill_table.add_row(
        "[bold]total[/]",
        *(f"[bold]{scale['total_usd']:,.2f}[/]" for scale in cost["scales"].values()),
    )
    console.print(bill_table)
    for label, scale in cost["scales"].items():
        console.print(f"[bold]{label}[/]")
        for line in scale["lines"]:
            console.print(f"  {line['item']}: {line['formula']} = ${line['usd']:,.2f}")


def parse_assumptions(pairs: list[str]) -> dict[str, float]:
    """Return ``ASSUMPTIONS`` with ``NAME=VALUE`` overrides; an unknown name is an error."""
    chosen = dict(ASSUMPTIONS)
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in chosen:
            raise SystemExit(f"unknown assumption {name!r}; known: {', '.join(chosen)}")
        chosen[name] = float(value)
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument(
        "--monitor-rows", type=int, default=None, help="default: --customers, at most 1M"
    )
    parser.add_argument("--repeats", type=int, default=3, help="scoring runs (median)")
    parser.add_argument(
        "--trials", type=int, default=None, help="training budget (default: the default, 12)"
    )
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=POSTGRES_URL,
        default=None,
        help=f"also score into PostgreSQL (default URL {POSTGRES_URL})",
    )
    parser.add_argument("--api-rps-per-core", type=float, default=API_RPS_PER_CORE)
    parser.add_argument("--assume", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="reuse the measurements of an earlier --json output (only the bill is redone)",
    )
    args = parser.parse_args()
    if args.monitor_rows is None:
        args.monitor_rows = min(args.customers, 1_000_000)
    assumptions = parse_assumptions(args.assume)
    if args.from_json is not None:
        found = json.loads(args.from_json.read_text())["measured"]
    else:
        tmp = Path(tempfile.mkdtemp(prefix="churnops-sizing-"))
        try:
            found = measure_all(tmp, args)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    cost = bill(inputs_from(found, args.api_rps_per_core), assumptions)
    if args.json:
        print(json.dumps({"measured": found, "bill": cost}, indent=2, default=str))
        return
    print_tables(found, cost)


if __name__ == "__main__":
    main()
