"""Drift statistics: agree with scipy, behave at the edges, no false alarms, real alarms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from churnops.monitoring.drift import (
    DriftThresholds,
    binned_counts,
    categorical_drift,
    chi_square,
    js_distance,
    ks_sorted,
    numeric_drift,
    prediction_drift,
    psi,
    quantile_edges,
)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (np.random.default_rng(0).normal(size=3000), np.random.default_rng(1).normal(0.1, 1, 2000)),
        # heavy ties: integers, as tenure or counts
        (
            np.random.default_rng(2).integers(0, 20, 5000).astype(float),
            np.random.default_rng(3).integers(0, 22, 4000).astype(float),
        ),
        (np.ones(100), np.ones(80)),
    ],
)
def test_ks_matches_scipy(a: np.ndarray, b: np.ndarray) -> None:
    """The KS statistic and asymptotic p-value equal scipy's, ties included."""
    d, p = ks_sorted(np.sort(a), np.sort(b))
    expected = stats.ks_2samp(a, b, method="asymp")
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-12)


def test_chi_square_matches_scipy() -> None:
    """Pearson's chi-square on a 2 × k table equals scipy's (no continuity correction)."""
    ref, cur = np.array([500, 300, 200, 0]), np.array([400, 350, 230, 20])
    statistic, p = chi_square(ref, cur)
    expected = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert statistic == pytest.approx(expected.statistic)
    assert p == pytest.approx(expected.pvalue)


def test_js_distance_matches_scipy() -> None:
    """JS distance (base 2) equals scipy's on the same histograms, empty bins included."""
    ref, cur = np.array([10.0, 0.0, 30.0, 60.0]), np.array([20.0, 5.0, 25.0, 0.0])
    assert js_distance(ref, cur) == pytest.approx(jensenshannon(ref, cur, base=2))
    assert js_distance(ref, ref) == pytest.approx(0.0, abs=1e-12)


def test_psi_formula_and_empty_bins() -> None:
    """PSI is sum((c - r) ln(c / r)); an empty bin is floored, not infinite."""
    r, c = np.array([50.0, 30.0, 20.0]), np.array([40.0, 30.0, 30.0])
    rs, cs = r / r.sum(), c / c.sum()
    assert psi(r, c) == pytest.approx(np.sum((cs - rs) * np.log(cs / rs)))
    assert psi(r, r) == 0.0
    empty = psi(np.array([100.0, 0.0]), np.array([50.0, 50.0]))
    assert np.isfinite(empty)
    assert empty > 1.0


def test_quantile_bins_hold_equal_reference_shares() -> None:
    """Reference-quantile bins put about 1/bins of the reference in each bin."""
    ref = np.sort(np.random.default_rng(4).exponential(size=10_000))
    counts = binned_counts(ref, quantile_edges(ref, 10))
    assert len(counts) == 10
    assert counts.min() >= 990
    assert counts.max() <= 1010


def test_constant_column_is_stable_and_a_moved_constant_alerts() -> None:
    """A constant column does not drift against itself and alerts when the constant moves."""
    same = numeric_drift("c", np.full(500, 3.0), np.full(400, 3.0))
    assert (same.psi, same.statistic, same.drifted) == (0.0, 0.0, False)
    moved = numeric_drift("c", np.full(500, 3.0), np.full(400, 4.0))
    assert moved.severity == "alert"
    assert moved.drifted
    assert moved.statistic == 1.0


def test_unseen_categories_are_counted() -> None:
    """A level the reference never had gets its own bin and is listed as new."""
    ref = pd.Series(["a"] * 500 + ["b"] * 500)
    cur = pd.Series(["a"] * 400 + ["b"] * 400 + ["zzz"] * 200)
    result = categorical_drift("x", ref, cur)
    assert result.new_categories == ["zzz"]
    assert result.psi > 0.25
    assert result.drifted
    assert result.test == "chi2"


def test_missing_values_are_data_quality_drift() -> None:
    """A column going blank shows in missing rates and in PSI (missing has its own bin)."""
    rng = np.random.default_rng(5)
    ref = rng.normal(size=2000)
    cur = rng.normal(size=2000)
    cur[:1000] = np.nan
    result = numeric_drift("x", ref, cur)
    assert result.missing_reference == 0.0
    assert result.missing_current == 0.5
    assert result.drifted


def test_booleans_compare_by_meaning_not_spelling() -> None:
    """Booleans stored as 1/0 in one table and "1"/"0" text in the other do not drift."""
    ref = pd.Series([1, 0] * 500)
    cur = pd.Series(["1", "0"] * 400)
    assert categorical_drift("flag", ref, cur, kind="boolean").psi == pytest.approx(0.0)


def test_prediction_drift_reports_high_risk_share() -> None:
    """Prediction drift compares score distributions and counts the share above threshold."""
    rng = np.random.default_rng(6)
    ref, cur = rng.beta(2, 5, 5000), rng.beta(5, 2, 5000)
    out = prediction_drift(ref, cur, threshold=0.5)
    assert out["psi"] > 0.25
    assert out["high_risk_share"] == pytest.approx(np.mean(cur >= 0.5))
    assert out["reference_high_risk_share"] == pytest.approx(np.mean(ref >= 0.5))


def test_thresholds_are_configurable() -> None:
    """A stricter PSI warning level flags a shift the default lets pass."""
    rng = np.random.default_rng(7)
    ref, cur = rng.normal(size=20_000), rng.normal(0.1, 1, 20_000)
    assert not numeric_drift("x", ref, cur).drifted
    strict = DriftThresholds(psi_warn=0.005, psi_alert=0.5)
    assert numeric_drift("x", ref, cur, strict).drifted
