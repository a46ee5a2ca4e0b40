"""Model performance: realised from labels, estimated without them, per window and segment.

The label-free estimate is confidence-based performance estimation (CBPE, as in NannyML):
when probabilities are calibrated, a customer scored ``p`` churns with probability ``p``,
so each row adds ``p`` to the expected true positives (flagged) or false negatives (not
flagged) and ``1 - p`` to the expected false positives or true negatives. Metrics follow
from that expected confusion matrix; the expected ROC-AUC is the expected share of
(churner, stayer) pairs ranked the right way. It holds under covariate shift (the relation
between features and churn unchanged) and fails under concept drift — which is why
realised metrics replace it as soon as labels arrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

PERFORMANCE_METRICS = ("roc_auc", "pr_auc", "f1", "precision", "recall")
ESTIMATED_METRICS = ("roc_auc", "f1", "precision", "recall")


def realised_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float | None]:
    """Return ROC-AUC, PR-AUC, F1, precision and recall; rank metrics are None for one class."""
    from sklearn import metrics as skm

    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    flag = p >= threshold
    both_classes = 0 < y.sum() < len(y)
    return {
        "roc_auc": float(skm.roc_auc_score(y, p)) if both_classes else None,
        "pr_auc": float(skm.average_precision_score(y, p)) if both_classes else None,
        "f1": float(skm.f1_score(y, flag, zero_division=0)),
        "precision": float(skm.precision_score(y, flag, zero_division=0)),
        "recall": float(skm.recall_score(y, flag, zero_division=0)),
    }


def estimated_metrics(p: np.ndarray, threshold: float) -> dict[str, float | None]:
    """Return label-free F1, precision, recall and ROC-AUC from calibrated probabilities."""
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    if len(p) == 0:
        return dict.fromkeys(ESTIMATED_METRICS)
    flag = p >= threshold
    tp = float(p[flag].sum())
    fp = float((1.0 - p[flag]).sum())
    fn = float(p[~flag].sum())
    return {
        "roc_auc": expected_roc_auc(p),
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else 0.0,
        "precision": tp / (tp + fp) if tp + fp > 0 else 0.0,
        "recall": tp / (tp + fn) if tp + fn > 0 else 0.0,
    }


def expected_roc_auc(p: np.ndarray) -> float | None:
    """Return the expected ROC-AUC when row i churns with probability p_i, independently.

    AUC is the share of (churner, stayer) pairs with the churner scored higher (ties count
    half). Weighting every ordered pair (i, j), i ≠ j, by p_i(1 - p_j) gives the expected
    numerator and denominator; one sort and cumulative sums make it O(n log n).
    """
    p = np.asarray(p, dtype=float)
    positives, negatives = p.sum(), (1.0 - p).sum()
    pairs = positives * negatives - float(np.sum(p * (1.0 - p)))
    if len(p) < 2 or pairs <= 0:
        return None
    values, inverse = np.unique(p, return_inverse=True)
    pos = np.bincount(inverse, weights=p, minlength=len(values))
    neg = np.bincount(inverse, weights=1.0 - p, minlength=len(values))
    self_pairs = np.bincount(inverse, weights=p * (1.0 - p), minlength=len(values))
    negatives_below = np.cumsum(neg) - neg
    right = np.sum(pos * negatives_below) + 0.5 * np.sum(pos * neg - self_pairs)
    return float(right / pairs)


def expected_confusion(
    rows: int, mean_score: float | None, precision: float | None, recall: float | None
) -> tuple[float, float, float, float] | None:
    """Return the expected (TP, FP, FN, TN) of an estimated slice from what the store keeps.

    The store keeps each slice's metrics, not its counts; with calibrated scores the
    expected churners are ``rows * mean_score`` and precision and recall give the rest.
    Nobody flagged (precision 0: every flagged row adds p > 0 to TP) means TP = FP = 0.
    None when the slice lacks a number.
    """
    if not rows or mean_score is None or precision is None or recall is None:
        return None
    churners = rows * mean_score
    tp = recall * churners
    flagged = tp / precision if precision > 0 else 0.0
    fn = churners - tp
    return tp, max(flagged - tp, 0.0), fn, max(rows - flagged - fn, 0.0)


def estimated_f1_band(
    confusions: list[tuple[float, float, float, float]], z: float = 1.96
) -> tuple[float, float] | None:
    """Return the band the realised F1 should fall in if the estimate's assumption holds.

    Under CBPE's own assumption (calibrated scores, customers churning independently) the
    realised true positives and false negatives are sums of independent Bernoulli draws
    over the flagged and the other rows; the band is F1 ± z sd by the delta method. The
    variance of such a sum is at most that of a binomial with the same mean, ``TP·FP /
    flagged`` (and ``FN·TN / unflagged``), which is all the stored metrics allow — so the
    band is slightly conservative. It says how far chance alone may move the realised
    F1; it cannot see concept drift, the estimate's real failure mode. ``confusions``
    are disjoint slices (the run's windows), pooled.
    """
    if not confusions:
        return None
    tp, fp, fn = (float(sum(c[i] for c in confusions)) for i in range(3))
    flagged, denominator = tp + fp, 2 * tp + fp + fn
    if denominator <= 0:
        return None
    var_tp = sum(c[0] * c[1] / (c[0] + c[1]) for c in confusions if c[0] + c[1] > 0)
    var_fn = sum(c[2] * c[3] / (c[2] + c[3]) for c in confusions if c[2] + c[3] > 0)
    f1 = 2 * tp / denominator
    d_tp, d_fn = 2 * (flagged + fn) / denominator**2, -2 * tp / denominator**2
    half = z * float(np.sqrt(d_tp**2 * var_tp + d_fn**2 * var_fn))
    return max(f1 - half, 0.0), min(f1 + half, 1.0)


@dataclass(frozen=True)
class Slice:
    """Metrics of one slice of the data: a time window or a segment level."""

    kind: str  # realised | estimated
    rows: int
    metrics: dict[str, float | None]
    positive_rate: float | None  # realised churn rate, or the mean score when estimated
    window_start: str | None = None
    window_end: str | None = None
    column: str | None = None
    level: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict without empty keys."""
        out = {
            "kind": self.kind,
            "rows": self.rows,
            "positive_rate": self.positive_rate,
            **self.metrics,
        }
        for key in ("window_start", "window_end", "column", "level"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def slice_metrics(
    p: np.ndarray, threshold: float, y: np.ndarray | None, **where: Any
) -> list[Slice]:
    """Return the estimated slice, and the realised one when labels ``y`` are given."""
    out = [Slice("estimated", len(p), estimated_metrics(p, threshold), _mean(p), **where)]
    if y is not None:
        labelled = ~np.isnan(y)
        if labelled.any():
            ys, ps = y[labelled].astype(int), p[labelled]
            out.append(
                Slice("realised", len(ys), realised_metrics(ys, ps, threshold), _mean(ys), **where)
            )
    return out


def window_metrics(
    p: np.ndarray,
    threshold: float,
    y: np.ndarray | None,
    dates: pd.Series | None,
    freq: str = "W",
) -> list[Slice]:
    """Return metrics per time window (one window "all" when there is no date column)."""
    if dates is None:
        return slice_metrics(p, threshold, y)
    when = pd.to_datetime(dates, errors="coerce")
    periods = when.dt.to_period(freq)
    out: list[Slice] = []
    for period in sorted(periods.dropna().unique()):
        mask = (periods == period).to_numpy()
        out += slice_metrics(
            p[mask],
            threshold,
            None if y is None else y[mask],
            window_start=period.start_time.date().isoformat(),
            window_end=period.end_time.date().isoformat(),
        )
    return out


def segment_metrics(
    frame: pd.DataFrame,
    p: np.ndarray,
    threshold: float,
    y: np.ndarray | None,
    columns: list[str],
    min_rows: int = 30,
) -> list[Slice]:
    """Return metrics per level of each segment column (levels under ``min_rows`` skipped)."""
    out: list[Slice] = []
    for column in columns:
        if column not in frame.columns:
            continue
        values = frame[column].astype("string").fillna("(missing)").to_numpy()
        for level in pd.unique(values):
            mask = values == level
            if mask.sum() < min_rows:
                continue
            out += slice_metrics(
                p[mask],
                threshold,
                None if y is None else y[mask],
                column=column,
                level=str(level),
            )
    return out


def _mean(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None
