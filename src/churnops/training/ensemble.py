"""Blend the tuned families: a logistic meta-learner on their out-of-fold margins.

Why a blend of margins: the families err differently (a linear model extrapolates in
tenure and charges, trees carve interactions), and the tuning study already holds each
family's out-of-fold predictions for its best configuration, so a blend costs no extra
CV fits. The blend is ``intercept + Σ w_k · margin_k`` with ``w_k >= 0``, fitted by
log-loss: linear in log-odds, so the served ensemble's one-row path, batch path and exact
SHAP values are the members' own, weighted
(:class:`~churnops.scoring.estimators.EnsembleEstimator`).
Non-negative weights keep each member's meaning (no member subtracted from another) and
drop members that add nothing (weight 0).

Honesty: the blend's CV score is *nested*: on each CV fold, the weights are fitted on
the other folds' out-of-fold margins and score that fold, so no row is scored by weights
that saw it. The blend is used only when that score beats the best single family's by
more than ``MIN_GAIN`` (a blend serves several models, so a tie is not worth it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from churnops.scoring.calibration import expit, logit
from churnops.training.evaluate import score_metric
from churnops.training.tuning import FamilyResult

MIN_GAIN = 1e-4  # CV gain below this is noise: keep the single family
_L2 = 1e-4  # a whisper of ridge, so collinear members get a unique, finite fit


@dataclass(frozen=True)
class Blend:
    """The fitted blend of some families, with its nested CV score and predictions."""

    families: list[str]
    """The members (weight > 0), in the order the tuner ran them; one when a single
    family takes all the weight."""
    weights: list[float]
    intercept: float
    score: float
    """Mean CV metric of the nested out-of-fold blend (comparable to a family's score)."""
    oof: np.ndarray = field(repr=False)
    """Nested out-of-fold probabilities (what calibration and the threshold are fitted on)."""

    def beats(self, best: FamilyResult) -> bool:
        """Return whether this is a blend (two members or more) whose CV score beats
        ``best``'s by more than ``MIN_GAIN``."""
        return len(self.families) > 1 and self.score > best.best_score + MIN_GAIN


def fit_weights(margins: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Return ``(intercept, weights >= 0)`` minimising the log-loss of the blended margins."""
    from scipy.optimize import minimize

    n, k = margins.shape
    sign = 2.0 * y - 1.0

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] + margins @ theta[1:]
        # log(1 + exp(-s z)) and its gradient, stable for large |z|
        value = float(np.logaddexp(0.0, -sign * z).sum()) / n + _L2 * float(theta[1:] @ theta[1:])
        g = -sign * expit(-sign * z) / n
        grad = np.concatenate([[g.sum()], margins.T @ g + 2 * _L2 * theta[1:]])
        return value, grad

    start = np.concatenate([[0.0], np.full(k, 1.0 / k)])
    bounds = [(None, None)] + [(0.0, None)] * k
    fitted = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    return float(fitted.x[0]), np.asarray(fitted.x[1:])


def blend_families(
    results: list[FamilyResult],
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    metric: str,
) -> Blend | None:
    """Blend every tuned family on its out-of-fold margins (None for fewer than two).

    ``folds`` must be the folds the families were tuned on (each row's out-of-fold
    prediction comes from the fold that held it out). The blend is returned even when
    one member takes all the weight (it is then no ensemble, see :meth:`Blend.beats`), so
    its nested score is reported either way.
    """
    if len(results) < 2:
        return None
    margins = np.column_stack([logit(r.oof) for r in results])
    nested = np.empty(len(y))
    for fit_idx, eval_idx in folds:
        intercept, weights = fit_weights(margins[fit_idx], y[fit_idx])
        nested[eval_idx] = intercept + margins[eval_idx] @ weights
    oof = expit(nested)
    score = float(np.mean([score_metric(metric, y[e], oof[e]) for _, e in folds]))
    intercept, weights = fit_weights(margins, y)
    kept = np.flatnonzero(weights > 0)
    if len(kept) == 0:
        return None
    return Blend(
        [results[i].family for i in kept],
        [float(weights[i]) for i in kept],
        intercept,
        score,
        oof,
    )
