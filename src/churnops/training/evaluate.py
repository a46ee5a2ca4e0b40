"""Classification metrics for churn models, with snake_case names used everywhere.

scikit-learn is imported where a metric is computed, not with the module: importing the
training stage (and the CLI's first progress line) should not wait for it.
"""

from __future__ import annotations

import numpy as np

METRIC_NAMES = (
    "roc_auc",
    "pr_auc",
    "f1",
    "precision",
    "recall",
    "accuracy",
    "brier",
    "log_loss",
    "calibration_error",
)


def score_metric(name: str, y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float:
    """Return one metric; ``roc_auc``/``pr_auc`` ignore the threshold."""
    from sklearn import metrics as skm

    if name == "roc_auc":
        return float(skm.roc_auc_score(y, p))
    if name == "pr_auc":
        return float(skm.average_precision_score(y, p))
    if name == "f1":
        return float(skm.f1_score(y, p >= threshold, zero_division=0))
    raise ValueError(f"unknown metric {name!r}")


def classification_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """Return every metric in :data:`METRIC_NAMES` for labels ``y`` and probabilities ``p``."""
    from sklearn import metrics as skm

    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    flag = p >= threshold
    return {
        "roc_auc": float(skm.roc_auc_score(y, p)),
        "pr_auc": float(skm.average_precision_score(y, p)),
        "f1": float(skm.f1_score(y, flag, zero_division=0)),
        "precision": float(skm.precision_score(y, flag, zero_division=0)),
        "recall": float(skm.recall_score(y, flag, zero_division=0)),
        "accuracy": float(skm.accuracy_score(y, flag)),
        "brier": float(skm.brier_score_loss(y, p)),
        "log_loss": float(skm.log_loss(y, p, labels=[0, 1])),
        "calibration_error": expected_calibration_error(y, p),
    }


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Return the expected calibration error over equal-width probability bins."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    mean_p = np.bincount(which, weights=p, minlength=bins)
    mean_y = np.bincount(which, weights=y, minlength=bins)
    filled = counts > 0
    gap = np.abs(mean_p[filled] - mean_y[filled]) / counts[filled]
    return float(np.sum(gap * counts[filled]) / len(p))
