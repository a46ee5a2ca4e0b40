"""Synthetic Telco-like customers at any scale, with optional realistic drift.

Rows are drawn from the demo data (a smoothed bootstrap: numbers get small noise, so the
synthetic table is not a copy), then drift shifts prices up, moves customers to
month-to-month contracts and shortens tenure. Labels come from a fixed logistic "truth"
model fitted once on the demo data, so drift is covariate shift: the relation between
features and churn stays the same, which is what label-free performance estimation
assumes and what a retrain trigger should not confuse with concept drift.
Generation is chunked and vectorised: memory stays flat and 1M rows take seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from churnops.data.demo import DEMO_ID, DEMO_TARGET, load_demo

CHUNK_ROWS = 250_000
DATE_COLUMN = "snapshot_date"


@dataclass(frozen=True)
class _Truth:
    """The demo data plus a logistic model of churn on its encoded features."""

    demo: pd.DataFrame  # with a ``_margin`` column: the truth model's log-odds per row
    weights: dict[str, float]  # encoded feature name -> log-odds weight


@lru_cache(maxsize=1)
def _truth() -> _Truth:
    from sklearn.linear_model import LogisticRegression

    from churnops.data.contract import infer_contract
    from churnops.features.encoder import FeatureEncoder

    demo = load_demo()
    demo["total_charges"] = demo["total_charges"].fillna(demo["monthly_charges"])
    contract = infer_contract(demo, DEMO_TARGET, DEMO_ID)
    encoder = FeatureEncoder(contract)
    X = encoder.transform(demo)
    y = contract.target_series(demo[DEMO_TARGET]).to_numpy(dtype=int)
    mean, scale = X.mean(axis=0), X.std(axis=0) + 1e-9
    model = LogisticRegression(C=1.0, max_iter=2000).fit((X - mean) / scale, y)
    weights = model.coef_[0] / scale
    bias = float(model.intercept_[0] - np.sum(weights * mean))
    named = dict(zip(encoder.feature_names, weights.tolist(), strict=True))
    return _Truth(demo.assign(_margin=X @ weights + bias), named)


def generate_chunks(
    rows: int,
    *,
    seed: int = 0,
    drift: float = 0.0,
    start_date: date | None = None,
    days: int = 7,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[pd.DataFrame]:
    """Yield synthetic customers in chunks of at most ``chunk_rows``.

    Args:
        rows: how many customers in total.
        seed: random seed; the same seed gives the same table.
        drift: 0 keeps the demo distribution; 1 is a strong, realistic shift.
        start_date: when given, add ``snapshot_date`` spread over ``days`` days from it.
        days: the span of ``snapshot_date``.
        chunk_rows: rows per chunk (memory stays bounded by this).
    """
    if rows < 1:
        raise ValueError("rows must be positive")
    if not 0.0 <= drift <= 1.0:
        raise ValueError("drift must be between 0 and 1")
    truth = _truth()
    rng = np.random.default_rng(seed)
    done = 0
    while done < rows:
        n = min(chunk_rows, rows - done)
        yield _chunk(truth, rng, n, done, seed, drift, start_date, days)
        done += n


def _chunk(
    truth: _Truth,
    rng: np.random.Generator,
    n: int,
    offset: int,
    seed: int,
    drift: float,
    start_date: date | None,
    days: int,
) -> pd.DataFrame:
    demo = truth.demo
    picked = demo.iloc[rng.integers(0, len(demo), n)].reset_index(drop=True)
    margin = picked.pop("_margin").to_numpy()
    tenure = picked["tenure"].to_numpy(dtype=float)
    monthly = picked["monthly_charges"].to_numpy(dtype=float)
    # Smoothed bootstrap: small noise so values are new but distributions match.
    new_tenure = np.clip(np.round(tenure + rng.normal(0, 1.0, n)), 0, 72)
    new_monthly = np.clip(np.round(monthly * (1 + rng.normal(0, 0.01, n)), 2), 18.0, 120.0)
    contract = picked["contract"].to_numpy(dtype=object).copy()
    if drift > 0:
        new_monthly = np.round(new_monthly * (1 + 0.25 * drift), 2)
        new_tenure = np.floor(new_tenure * (1 - 0.45 * drift * rng.random(n)))
        moved = (contract != "Month-to-month") & (rng.random(n) < 0.5 * drift)
        contract[moved] = "Month-to-month"
    truth_weights = truth.weights
    margin = (
        margin
        + truth_weights["tenure"] * (new_tenure - tenure)
        + truth_weights["monthly_charges"] * (new_monthly - monthly)
        + _contract_shift(truth_weights, picked["contract"].to_numpy(dtype=object), contract)
    )
    total = np.round(new_monthly * np.maximum(new_tenure, 1) * (1 + rng.normal(0, 0.02, n)), 2)
    margin += truth_weights["total_charges"] * (total - picked["total_charges"].to_numpy(float))
    churn = rng.random(n) < 1.0 / (1.0 + np.exp(-margin))
    picked["tenure"] = new_tenure.astype(int)
    picked["monthly_charges"] = new_monthly
    picked["total_charges"] = total
    picked["contract"] = contract
    picked[DEMO_TARGET] = np.where(churn, "Yes", "No")
    picked[DEMO_ID] = [f"S{seed:03d}-{i:09d}" for i in range(offset, offset + n)]
    if start_date is not None:
        day = rng.integers(0, max(days, 1), n)
        picked[DATE_COLUMN] = [(start_date + timedelta(days=int(d))).isoformat() for d in day]
    return picked


def _contract_shift(weights: dict[str, float], before: np.ndarray, after: np.ndarray) -> np.ndarray:
    lookup = {level: weights.get(f"contract={level}", 0.0) for level in set(before) | set(after)}
    return np.array([lookup[a] - lookup[b] for a, b in zip(after, before, strict=True)])


def write_synthetic(
    path: str | Path,
    rows: int,
    *,
    seed: int = 0,
    drift: float = 0.0,
    start_date: date | None = None,
    days: int = 7,
) -> Path:
    """Write ``rows`` synthetic customers to CSV or Parquet, chunk by chunk."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    chunks = generate_chunks(rows, seed=seed, drift=drift, start_date=start_date, days=days)
    if file.suffix.lower() in {".parquet", ".pq"}:
        import pyarrow as pa
        import pyarrow.parquet as pq

        writer = None
        try:
            for chunk in chunks:
                table = pa.Table.from_pandas(chunk, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(file, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
    else:
        for i, chunk in enumerate(chunks):
            chunk.to_csv(file, mode="w" if i == 0 else "a", header=i == 0, index=False)
    return file
