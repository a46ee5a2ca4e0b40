"""Performance: realised metrics, and the label-free estimate's accuracy."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from churnops.monitoring.performance import (
    estimated_metrics,
    expected_roc_auc,
    realised_metrics,
    segment_metrics,
    window_metrics,
)


def test_expected_roc_auc_equals_brute_force_over_pairs() -> None:
    """The O(n log n) expected AUC equals the pairwise definition (ties count half)."""
    p = np.array([0.1, 0.4, 0.4, 0.8, 0.95, 0.3, 0.6])
    num = den = 0.0
    for i, j in itertools.permutations(range(len(p)), 2):
        w = p[i] * (1 - p[j])
        den += w
        num += w * (1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0)
    assert expected_roc_auc(p) == pytest.approx(num / den)


def test_estimate_matches_reality_when_probabilities_are_calibrated() -> None:
    """Labels drawn from calibrated probabilities: estimated ≈ realised (within 0.01)."""
    rng = np.random.default_rng(0)
    p = rng.beta(1.5, 4, 200_000)
    y = (rng.random(len(p)) < p).astype(int)
    estimated, realised = estimated_metrics(p, 0.35), realised_metrics(y, p, 0.35)
    for key in ("f1", "precision", "recall", "roc_auc"):
        assert estimated[key] == pytest.approx(realised[key], abs=0.01), key


def test_the_estimate_is_wrong_under_concept_drift() -> None:
    """If churn no longer follows the scores, the estimate is off (why labels still matter)."""
    rng = np.random.default_rng(1)
    p = rng.beta(1.5, 4, 50_000)
    y = (rng.random(len(p)) < 0.3).astype(int)  # labels unrelated to the scores
    assert estimated_metrics(p, 0.35)["roc_auc"] - realised_metrics(y, p, 0.35)["roc_auc"] > 0.1


def test_one_class_slice_has_no_rank_metrics() -> None:
    """A window where nobody churned has F1 etc. but no ROC-AUC (None, not a crash)."""
    out = realised_metrics(np.zeros(10, dtype=int), np.linspace(0, 1, 10), 0.5)
    assert out["roc_auc"] is None
    assert out["precision"] == 0.0


def test_windows_and_segments() -> None:
    """Metrics per week and per segment level, estimated always, realised with labels."""
    rng = np.random.default_rng(2)
    n = 600
    p = rng.random(n)
    y = (rng.random(n) < p).astype(float)
    y[:100] = np.nan  # labels not in yet
    dates = pd.Series(pd.date_range("2026-01-05", periods=14, freq="D")[rng.integers(0, 14, n)])
    windows = window_metrics(p, 0.5, y, dates, "W")
    assert [(w.kind, w.window_start) for w in windows] == [
        ("estimated", "2026-01-05"),
        ("realised", "2026-01-05"),
        ("estimated", "2026-01-12"),
        ("realised", "2026-01-12"),
    ]
    assert sum(w.rows for w in windows if w.kind == "realised") == 500
    frame = pd.DataFrame({"contract": rng.choice(["M", "Y", "tiny"], n, p=[0.6, 0.38, 0.02])})
    segments = segment_metrics(frame, p, 0.5, None, ["contract", "absent"], min_rows=30)
    assert {(s.column, s.level) for s in segments} == {("contract", "M"), ("contract", "Y")}


def test_labels_below_the_band_are_worse_and_above_it_are_better() -> None:
    """The estimate check says which way labels contradict it; only worse is a problem."""
    from churnops.monitoring.performance import estimate_check

    rng = np.random.default_rng(3)
    p = rng.beta(1.5, 3.0, 2000)
    for labels, worse in (((p < 0.3).astype(int), True), ((p >= 0.4).astype(int), False)):
        check = estimate_check(labels, p, 0.4, realised_metrics(labels, p, 0.4))
        assert check["judged"]
        assert check["disagrees"]
        assert check["worse"] is worse
        assert ("CONTRADICT" in check["message"]) is worse
        assert ("BEAT" in check["message"]) is not worse


def test_too_few_labels_judge_nothing() -> None:
    from churnops.monitoring.performance import estimate_check

    p = np.linspace(0.05, 0.95, 50)
    y = (p > 0.5).astype(int)
    check = estimate_check(y, p, 0.5, realised_metrics(y, p, 0.5))
    assert not check["judged"]
    assert not check["disagrees"]
    assert "too few" in check["message"]
