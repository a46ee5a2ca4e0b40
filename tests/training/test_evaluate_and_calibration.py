"""Metrics and calibration: calibrate only when it lowers the CV Brier score."""

from __future__ import annotations

import numpy as np

from churnops.training.calibration import MAX_AUC_LOSS, choose_calibration
from churnops.training.evaluate import (
    METRIC_NAMES,
    classification_metrics,
    expected_calibration_error,
)


def test_metrics_have_every_name_and_sane_values() -> None:
    """All metric names are present; a perfect ranking has ROC-AUC 1."""
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.2, 0.8, 0.9, 0.3, 0.7])
    metrics = classification_metrics(y, p, 0.5)
    assert set(metrics) == set(METRIC_NAMES)
    assert metrics["roc_auc"] == 1.0
    assert metrics["f1"] == 1.0


def test_calibration_error_zero_when_calibrated_and_large_when_not() -> None:
    """ECE is near zero for calibrated scores and large for scores pushed to the extremes."""
    rng = np.random.default_rng(0)
    p = rng.random(50_000)
    y = (rng.random(50_000) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.01
    assert expected_calibration_error(y, np.where(p > 0.5, 0.99, 0.01)) > 0.2


def test_miscalibrated_scores_get_a_calibrator() -> None:
    """Over-confident scores are calibrated, and the Brier score improves."""
    rng = np.random.default_rng(1)
    true_p = rng.random(5000)
    y = (rng.random(5000) < true_p).astype(int)
    overconfident = 1 / (1 + np.exp(-4 * np.log(true_p / (1 - true_p))))
    choice = choose_calibration(overconfident, y)
    assert choice.method in {"sigmoid", "isotonic"}
    assert choice.brier[choice.method] < choice.brier["none"]
    assert np.all(np.diff(choice.calibrator(np.linspace(0.01, 0.99, 50))) >= -1e-12)


def test_calibrated_scores_are_left_alone() -> None:
    """Already calibrated scores keep method 'none'."""
    rng = np.random.default_rng(2)
    p = rng.random(5000)
    y = (rng.random(5000) < p).astype(int)
    assert choose_calibration(p, y).method == "none"


def test_a_calibrator_that_ties_the_ranking_is_not_used() -> None:
    """Isotonic wins on Brier here, but its steps cost ROC-AUC: sigmoid is used instead."""
    rng = np.random.default_rng(2)
    true_p = rng.random(4000)
    y = (rng.random(4000) < true_p).astype(int)
    choice = choose_calibration(true_p**3, y)
    assert choice.brier["isotonic"] < choice.brier["sigmoid"] < choice.brier["none"]
    assert choice.roc_auc["isotonic"] < choice.roc_auc["none"] - MAX_AUC_LOSS
    assert choice.method == "sigmoid"
