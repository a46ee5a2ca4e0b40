"""Calibrate probabilities only when it lowers the cross-validated Brier score.

The calibrator is fitted on out-of-fold predictions of the chosen model (cross-fitting),
so it never sees a probability the model produced for its own training rows. Which
method wins (none, sigmoid, isotonic) is itself decided by CV on those predictions.

A method must also keep the ranking: isotonic regression is a step function, and its
flat steps tie customers the model ranked apart (on the call-detail table it cost a
CatBoost model 0.009 holdout ROC-AUC for a Brier gain in the fourth decimal). ROC-AUC
selects the model and gates promotion, and campaigns contact customers in rank order, so
a method whose cross-fitted ROC-AUC is more than ``MAX_AUC_LOSS`` below the raw scores'
is not used, whatever its Brier score.

scikit-learn fits; the result is converted at once to the data-only calibrators of
:mod:`churnops.scoring.calibration`, and those compute every calibrated number here too —
so the CV Brier that chose the method is the arithmetic the served model runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from churnops.scoring.calibration import (
    Calibrator,
    IsotonicCalibrator,
    SigmoidCalibrator,
    logit,
)

MIN_GAIN = 1e-4  # Brier improvement below this is noise: keep the raw probabilities
MAX_AUC_LOSS = 1e-3  # ranking a calibrator may cost (cross-fitted ROC-AUC) to be used


@dataclass(frozen=True)
class CalibrationChoice:
    """What the calibration check found."""

    method: str  # "none", "sigmoid" or "isotonic"
    brier: dict[str, float]  # CV Brier score of each method
    calibrator: Calibrator | None
    roc_auc: dict[str, float]  # CV ROC-AUC of each method (a tie-making one is not used)


def fit_calibrator(method: str, p: np.ndarray, y: np.ndarray) -> Calibrator:
    """Fit a sigmoid (Platt) or isotonic calibrator on probabilities ``p``."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    p = np.asarray(p, dtype=np.float64)
    if method == "isotonic":
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, y)
        return IsotonicCalibrator(
            tuple(float(x) for x in iso.X_thresholds_), tuple(float(v) for v in iso.y_thresholds_)
        )
    lr = LogisticRegression(C=1e6).fit(logit(p)[:, None], y)
    return SigmoidCalibrator(float(lr.coef_[0][0]), float(lr.intercept_[0]))


def choose_calibration(p_oof: np.ndarray, y: np.ndarray, seed: int = 0) -> CalibrationChoice:
    """Compare no calibration, sigmoid and isotonic by CV Brier on out-of-fold probabilities.

    Only methods that keep the cross-fitted ROC-AUC within ``MAX_AUC_LOSS`` of the raw
    scores' compete (see the module docstring).
    """
    from sklearn.metrics import brier_score_loss, roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y, dtype=int)
    scores = {"none": float(brier_score_loss(y, p_oof))}
    aucs = {"none": float(roc_auc_score(y, p_oof))}
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    for method in ("sigmoid", "isotonic"):
        calibrated = np.empty_like(p_oof)
        for fit_idx, eval_idx in folds.split(p_oof, y):
            calibrator = fit_calibrator(method, p_oof[fit_idx], y[fit_idx])
            calibrated[eval_idx] = calibrator(p_oof[eval_idx])
        scores[method] = float(brier_score_loss(y, calibrated))
        aucs[method] = float(roc_auc_score(y, calibrated))
    ranked = [m for m in scores if aucs[m] >= aucs["none"] - MAX_AUC_LOSS]
    best = min(ranked, key=scores.__getitem__)
    if best == "none" or scores["none"] - scores[best] < MIN_GAIN:
        return CalibrationChoice("none", scores, None, aucs)
    return CalibrationChoice(best, scores, fit_calibrator(best, p_oof, y), aucs)
