"""Drift statistics at scale: churnops vs Evidently's DataDriftPreset on the same data.

    .venv/bin/python bench/monitor.py                 # 1M vs 1M rows x 20 features
    .venv/bin/python bench/monitor.py --rows 200000   # quicker
    .venv/bin/python bench/monitor.py --skip-evidently

Data: synthetic customers (``churnops.data.synth``; 19 features: 3 numeric, 6 boolean,
10 categorical) plus one continuous numeric (``usage_gb``) = 20 features; the current
side has drift 0.5. Both sides are written to Parquet once; each contender then runs in
its own subprocess, which reads the Parquet files (text as pandas categoricals), runs its
drift statistics once and reports the wall time of the statistics alone and the process's
peak RSS while they run (Linux VmHWM, reset after loading; the data stays resident and
is included), so the two peaks are comparable and neither pays for the other's imports.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
import pandas as pd
kind, ref_path, cur_path = sys.argv[1:4]
import pyarrow.parquet as pq
# Text columns load as pandas categoricals: object strings would cost ~1.2 GB before any
# statistic runs. Both contenders get exactly the same frames.
# The id and label columns are not features; neither contender reads them.
columns = [c for c in pq.read_schema(ref_path).names if c not in ("customer_id", "churn")]
reference = pq.read_table(ref_path, columns=columns).to_pandas(strings_to_categorical=True)
current = pq.read_table(cur_path, columns=columns).to_pandas(strings_to_categorical=True)
numeric = ["tenure", "monthly_charges", "total_charges", "usage_gb"]
features = list(reference.columns)
import gc
gc.collect()
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith(("VmHWM", "VmRSS")):
            yield int(line.split()[1]) / 1024
def reset_peak():
    # Linux: writing 5 to clear_refs resets VmHWM, so the peak below covers the statistics
    # (with the data resident) and not the Parquet reading, which would dominate.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
loaded_rss = list(hwm())[1]
reset_peak()
if kind == "churnops":
    from churnops.data.contract import infer_contract
    from churnops.monitoring.drift import data_drift
    sample = reference.head(20_000).assign(churn=[0, 1] * 10_000)
    contract = infer_contract(sample, "churn")
    started = time.perf_counter()
    drift = data_drift(reference, current, contract)
    seconds = time.perf_counter() - started
    drifted = len(drift.drifted_features)
    n_features = len(drift.features)
else:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset
    categorical = [c for c in features if c not in numeric]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    started = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(current[features], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[features], data_definition=definition),
    )
    result = snapshot.dict()
    seconds = time.perf_counter() - started
    count = result["metrics"][0]["value"]
    drifted, n_features = int(count["count"]), len(features)
peak = list(hwm())[0]
print(json.dumps({"seconds": seconds, "peak_mb": peak, "data_mb": loaded_rss,
                  "drifted": drifted, "features": n_features}))
"""


def make_data(rows: int, folder: Path) -> tuple[Path, Path]:
    """Write reference (drift 0) and current (drift 0.5) Parquet files of ``rows`` rows."""
    import numpy as np
    import pandas as pd

    from churnops.data.synth import generate_chunks

    paths = []
    for name, seed, drift in (("reference", 1, 0.0), ("current", 2, 0.5)):
        frame = pd.concat(generate_chunks(rows, seed=seed, drift=drift), ignore_index=True)
        rng = np.random.default_rng(seed)
        frame["usage_gb"] = rng.gamma(2.0, 10.0 * (1 + 0.2 * drift), rows).round(3)
        path = folder / f"{name}.parquet"
        frame.to_parquet(path, index=False)
        paths.append(path)
    return paths[0], paths[1]


def run(kind: str, reference: Path, current: Path) -> dict:
    """Run one contender in a fresh interpreter and return its measurements."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(reference), str(current)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per side")
    parser.add_argument("--skip-evidently", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        reference, current = make_data(args.rows, Path(tmp))
        print(
            f"data: {args.rows:,} vs {args.rows:,} rows, made in "
            f"{time.perf_counter() - started:.1f}s"
        )
        ours = run("churnops", reference, current)
        print(
            f"churnops  drift stats: {ours['seconds']:6.2f} s, "
            f"peak RSS {ours['peak_mb']:6.0f} MB (data resident {ours['data_mb']:.0f} MB); "
            f"{ours['drifted']}/{ours['features']} drifted"
        )
        if args.skip_evidently:
            return
        theirs = run("evidently", reference, current)
        print(
            f"evidently DataDriftPreset: {theirs['seconds']:6.2f} s, peak RSS "
            f"{theirs['peak_mb']:6.0f} MB (data resident {theirs['data_mb']:.0f} MB); "
            f"{theirs['drifted']}/{theirs['features']} drifted"
        )
        print(
            f"ratio: churnops is {theirs['seconds'] / ours['seconds']:.1f}x faster, "
            f"{theirs['peak_mb'] / ours['peak_mb']:.1f}x less peak memory"
        )


if __name__ == "__main__":
    main()
