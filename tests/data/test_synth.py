"""Synthetic customers: the demo contract, the demo distributions at drift 0, real drift above."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnops.data.contract import infer_contract
from churnops.data.demo import DEMO_ID, DEMO_TARGET, load_demo
from churnops.data.sources import read_parquet
from churnops.data.synth import generate_chunks, write_synthetic
from churnops.data.validation import validate


def psi(expected: pd.Series, actual: pd.Series, bins: int = 10) -> float:
    """Population stability index of ``actual`` against ``expected`` (deciles or levels)."""
    if pd.api.types.is_numeric_dtype(expected) and expected.nunique() > bins:
        edges = np.unique(np.nanquantile(expected, np.linspace(0, 1, bins + 1)))
        edges[0], edges[-1] = -np.inf, np.inf
        e = pd.cut(expected, edges).value_counts(normalize=True, sort=False)
        a = pd.cut(actual, edges).value_counts(normalize=True, sort=False)
    else:
        e = expected.astype(str).value_counts(normalize=True)
        a = actual.astype(str).value_counts(normalize=True).reindex(e.index, fill_value=0)
    e, a = np.clip(e.to_numpy(), 1e-4, None), np.clip(a.to_numpy(), 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


@pytest.fixture(scope="module")
def demo() -> pd.DataFrame:
    return load_demo()


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    return pd.concat(generate_chunks(100_000, seed=3, chunk_rows=30_000), ignore_index=True)


def test_drift_zero_matches_every_demo_feature_within_psi_005(
    demo: pd.DataFrame, synthetic: pd.DataFrame
) -> None:
    """At drift 0 each feature's distribution is within PSI 0.05 of the demo data."""
    features = [c for c in demo.columns if c not in (DEMO_ID,)]
    scores = {c: psi(demo[c], synthetic[c]) for c in features}
    assert max(scores.values()) < 0.05, scores
    assert abs(synthetic[DEMO_TARGET].eq("Yes").mean() - demo[DEMO_TARGET].eq("Yes").mean()) < 0.03


def test_synthetic_rows_pass_the_demo_contract_and_ids_are_unique(
    demo: pd.DataFrame, synthetic: pd.DataFrame
) -> None:
    """Every synthetic row is valid under the demo data's contract."""
    contract = infer_contract(demo, DEMO_TARGET, DEMO_ID)
    result = validate(synthetic, contract)
    assert result.report.ok, result.report.summary()
    assert synthetic[DEMO_ID].is_unique
    assert list(synthetic.columns) == list(demo.columns)


def test_drift_raises_prices_shortens_tenure_and_moves_contracts(
    demo: pd.DataFrame, synthetic: pd.DataFrame
) -> None:
    """Drift 1 shifts prices up, tenure down and contracts to month-to-month."""
    drifted = pd.concat(generate_chunks(50_000, seed=3, drift=1.0), ignore_index=True)
    assert psi(demo["monthly_charges"], drifted["monthly_charges"]) > 0.2
    assert drifted["monthly_charges"].mean() > 1.15 * synthetic["monthly_charges"].mean()
    assert drifted["tenure"].mean() < 0.9 * synthetic["tenure"].mean()
    monthly = "Month-to-month"
    assert (drifted["contract"] == monthly).mean() > (synthetic["contract"] == monthly).mean() + 0.1


def test_same_seed_same_table_and_dates_span_the_window(tmp_path: Path) -> None:
    """A seed reproduces the table; snapshot dates fall inside the requested days."""
    a = write_synthetic(tmp_path / "a.parquet", 2_000, seed=9, start_date=date(2026, 1, 1), days=3)
    b = write_synthetic(tmp_path / "b.csv", 2_000, seed=9, start_date=date(2026, 1, 1), days=3)
    left, right = read_parquet(a), pd.read_csv(b)
    pd.testing.assert_frame_equal(left, right, check_dtype=False)
    assert set(left["snapshot_date"]) == {"2026-01-01", "2026-01-02", "2026-01-03"}
