"""Choose the decision threshold: max F1, or max expected campaign profit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from churnops.campaign import ProfitModel, cumulative_profit


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen threshold and the curve it was chosen from."""

    strategy: str
    threshold: float
    thresholds: np.ndarray
    objective: np.ndarray  # F1 or profit at each candidate threshold


def candidate_thresholds(p: np.ndarray, limit: int = 400) -> np.ndarray:
    """Return up to ``limit`` thresholds at the quantiles of the scores."""
    qs = np.unique(np.quantile(p, np.linspace(0.0, 1.0, limit)))
    return qs[(qs > 0.0) & (qs < 1.0)] if len(qs) > 2 else np.array([0.5])


def f1_curve(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Return F1 at each threshold (vectorised over sorted scores)."""
    tp, fp = _counts_above(y, p, thresholds)
    fn = y.sum() - tp
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(tp, dtype=float), where=denom > 0)


def profit_curve(
    y: np.ndarray,
    p: np.ndarray,
    thresholds: np.ndarray,
    economics: ProfitModel,
    values: np.ndarray | None = None,
) -> np.ndarray:
    """Return realised campaign profit at each threshold (per-customer values optional).

    The campaign's own formula (:func:`churnops.campaign.cumulative_profit`) with the
    labels as outcomes, read at the number of customers each threshold contacts: the
    threshold is chosen by the same arithmetic the campaign planner uses.
    """
    order = np.argsort(-p)
    v = None if values is None else np.asarray(values, float)[order]
    profit = cumulative_profit(y[order], v, economics)
    contacted = np.searchsorted(-p[order], -thresholds, side="right")
    return profit[contacted]


def choose_threshold(
    y: np.ndarray,
    p: np.ndarray,
    strategy: str = "f1",
    economics: ProfitModel | None = None,
    values: np.ndarray | None = None,
) -> ThresholdChoice:
    """Pick the threshold that maximises F1 or profit on (out-of-fold) predictions."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    thresholds = candidate_thresholds(p)
    if strategy == "profit":
        if economics is None:
            raise ValueError("profit strategy needs a ProfitModel")
        objective = profit_curve(y, p, thresholds, economics, values)
    else:
        objective = f1_curve(y, p, thresholds)
    best = int(np.argmax(objective))
    return ThresholdChoice(strategy, float(thresholds[best]), thresholds, objective)


def _counts_above(
    y: np.ndarray, p: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-p)
    p_sorted, y_sorted = p[order], y[order]
    cum_tp = np.concatenate([[0], np.cumsum(y_sorted)])
    flagged = np.searchsorted(-p_sorted, -thresholds, side="right")
    tp = cum_tp[flagged].astype(float)
    return tp, flagged - tp
