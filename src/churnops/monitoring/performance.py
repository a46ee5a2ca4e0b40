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
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

PERFORMANCE_METRICS = ("roc_auc", "pr_auc", "f1", "precision", "recall")
ESTIMATED_METRICS = ("roc_auc", "f1", "precision", "recall")
ESTIMATE_ASSUMPTION = (
    "Label-free estimates assume calibrated scores and an unchanged relation between "
    "features and churn (covariate shift only); the band is where 99% of realised values "
    "fall if that holds, widened by the estimate's error on the champion's own training "
    "data. Concept drift breaks the assumption and the estimate cannot see it: only labels can."
)
BAND_DRAWS = 200
BAND_Z = 2.576  # 99%: a band judged on every labelled run should rarely cry wolf
MIN_LABELS_TO_JUDGE = 100  # fewer labelled rows (or under 10 churners) judge nothing


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


def estimated_bands(
    p: np.ndarray,
    threshold: float,
    estimate: dict[str, float | None],
    draws: int = BAND_DRAWS,
    seed: int = 0,
) -> dict[str, tuple[float, float] | None]:
    """Return each estimated metric's 99% band under the estimate's own assumption.

    A parametric bootstrap: ``draws`` label sets are drawn with row i churning with
    probability p_i, independently (what CBPE assumes); the band is the estimate ±
    :data:`BAND_Z` standard deviations of the metric over the draws — how far chance
    alone moves the realised value (a standard deviation is steady with a few hundred
    draws; a 0.5% percentile is not). ROC-AUC per draw is a dot product with the scores'
    ranks (computed once), so a draw costs O(n). A draw with one class only is skipped.
    ``estimate`` is :func:`estimated_metrics` of the same scores (the bands' centres).
    """
    from scipy.stats import rankdata

    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    n = len(p)
    if n < 2:
        return dict.fromkeys(ESTIMATED_METRICS)
    rng = np.random.default_rng(seed)
    flag = p >= threshold
    flagged = int(flag.sum())
    ranks = rankdata(p)
    out: dict[str, list[np.ndarray]] = {m: [] for m in ESTIMATED_METRICS}
    per_batch = max(1, 4_000_000 // n)  # bounds memory to ~4M draws of one row at a time
    for start in range(0, draws, per_batch):
        y = rng.random((min(per_batch, draws - start), n)) < p
        positives = y.sum(axis=1).astype(float)
        tp = (y & flag).sum(axis=1).astype(float)
        fp, fn = flagged - tp, positives - tp
        with np.errstate(divide="ignore", invalid="ignore"):
            out["f1"].append(np.where(tp > 0, 2 * tp / (2 * tp + fp + fn), 0.0))
            out["precision"].append(np.where(flagged > 0, tp / max(flagged, 1), 0.0))
            out["recall"].append(np.where(positives > 0, tp / positives, np.nan))
            negatives = n - positives
            auc = (y @ ranks - positives * (positives + 1) / 2) / (positives * negatives)
            out["roc_auc"].append(np.where((positives > 0) & (negatives > 0), auc, np.nan))
    bands: dict[str, tuple[float, float] | None] = {}
    for metric, parts in out.items():
        values = np.concatenate(parts)
        values = values[~np.isnan(values)]
        centre = estimate[metric]
        if len(values) < 2 or centre is None:
            bands[metric] = None
            continue
        half = BAND_Z * float(values.std(ddof=1))
        bands[metric] = (max(centre - half, 0.0), min(centre + half, 1.0))
    return bands


def estimate_error(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """Return |estimated - realised| per metric on labelled data where the assumption holds.

    Measured on the champion's own training snapshot, it is the estimate's error that is
    not chance (imperfect calibration); :func:`estimate_check` widens its bands by it so
    labels contradict the estimate only beyond what the champion's own data shows.
    """
    estimated = estimated_metrics(p, threshold)
    realised = realised_metrics(y, p, threshold)
    return {
        m: abs(estimated[m] - realised[m])  # type: ignore[operator]
        for m in ("roc_auc", "f1")
        if estimated.get(m) is not None and realised.get(m) is not None
    }


def estimate_check(
    y: np.ndarray,
    p: np.ndarray,
    threshold: float,
    realised: dict[str, float | None],
    slack: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Compare the label-free estimate with the labels, on the labelled rows only.

    Returns ``{"judged", "disagrees", "worse", "metrics": {metric: {estimated, band,
    realised, outside}}, "message"}``. With fewer than :data:`MIN_LABELS_TO_JUDGE` labelled
    rows or 10 churners nothing is judged. ``disagrees`` is True when a realised ROC-AUC or
    F1 falls outside its band (widened by ``slack``, see :func:`estimate_error`): the
    estimate's assumption does not hold for this data. ``worse`` says a realised value fell
    below its band — the model does worse than it believes, a reason to retrain; above the
    band (e.g. the rows it was trained on) it does better, loud but no reason to retrain.
    """
    y = np.asarray(y, dtype=int)
    if len(y) < MIN_LABELS_TO_JUDGE or int(y.sum()) < 10:
        return {
            "judged": False,
            "disagrees": False,
            "metrics": {},
            "worse": False,
            "message": f"{len(y)} labelled row(s), {int(y.sum())} churner(s): too few to judge "
            "the label-free estimate",
        }
    estimated = estimated_metrics(p, threshold)
    bands = estimated_bands(p, threshold, estimated)
    metrics: dict[str, dict[str, Any]] = {}
    worse: list[str] = []
    better: list[str] = []
    for metric in ("roc_auc", "f1"):
        est, band, real = estimated[metric], bands[metric], realised.get(metric)
        if est is None or band is None or real is None:
            continue
        extra = (slack or {}).get(metric, 0.0)
        band = (max(band[0] - extra, 0.0), min(band[1] + extra, 1.0))
        outside = not band[0] <= real <= band[1]
        metrics[metric] = {
            "estimated": round(est, 6),
            "band": [round(band[0], 6), round(band[1], 6)],
            "realised": round(real, 6),
            "outside": outside,
        }
        if outside:
            (worse if real < band[0] else better).append(
                f"{_LABELS[metric]} estimated {est:.3f} (99% band {band[0]:.3f}-{band[1]:.3f}) "
                f"but realised {real:.3f}"
            )
    if worse:
        message = (
            f"LABELS CONTRADICT THE LABEL-FREE ESTIMATE on {len(y):,} labelled rows: "
            f"{'; '.join(worse + better)}. Its assumption does not hold here: the relation "
            "between features and churn has changed (concept drift), or the scores are not "
            "calibrated for this data. Trust the realised figures; label-free estimates on "
            "data like this are unreliable."
        )
    elif better:
        message = (
            f"LABELS BEAT THE LABEL-FREE ESTIMATE on {len(y):,} labelled rows: "
            f"{'; '.join(better)}. The estimate is too pessimistic here (scores not calibrated "
            "for this data, or rows the model was trained on): trust the realised figures."
        )
    else:
        message = f"labels agree with the label-free estimate on {len(y):,} labelled rows"
    return {
        "judged": True,
        "disagrees": bool(worse or better),
        "worse": bool(worse),
        "metrics": metrics,
        "message": message,
    }


_LABELS = {"roc_auc": "ROC-AUC", "f1": "F1"}


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
    undated: date | None = None,
) -> list[Slice]:
    """Return metrics per time window.

    Without a date column the batch is one window, dated ``undated`` (the run's date)
    when given, so runs still line up in time.
    """
    if dates is None:
        day = undated.isoformat() if undated else None
        return slice_metrics(p, threshold, y, window_start=day, window_end=day)
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
