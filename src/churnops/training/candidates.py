"""Model families as entries: a search space, a builder and a converter to the native model.

Adding a family is adding an entry to :data:`CANDIDATES` (and its native estimator in
:mod:`churnops.scoring.estimators`); the tuner never names one. Training fits the
scikit-learn-style estimator; ``to_native`` turns the fitted one into the data-only model
the artifact stores and every scoring path uses (which also owns the exact SHAP
contributions), so nothing fitted here is ever pickled or needed at serving time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from churnops.scoring.estimators import (
    Estimator,
    LightGBMEstimator,
    LogisticEstimator,
    XGBoostEstimator,
)
from churnops.scoring.trees import compile_lightgbm

if TYPE_CHECKING:
    import optuna

N_JOBS = 2


@dataclass(frozen=True)
class Candidate:
    """One model family: how to sample its parameters, build it, and convert the fitted one."""

    name: str
    suggest: Callable[[optuna.Trial], dict[str, Any]]
    build: Callable[[dict[str, Any], int], Any]
    to_native: Callable[[Any], Estimator]
    """Return the fitted estimator as a native, data-only scoring estimator."""


def _logistic_space(trial: optuna.Trial) -> dict[str, Any]:
    return {"C": trial.suggest_float("C", 1e-3, 100.0, log=True)}


def _logistic_build(params: dict[str, Any], seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = LogisticRegression(C=params["C"], max_iter=2000, random_state=seed)
    return make_pipeline(StandardScaler(), model)


def _logistic_native(model: Any) -> LogisticEstimator:
    scaler, logreg = model[0], model[-1]
    width = logreg.coef_.shape[1]
    mean = scaler.mean_ if scaler.with_mean else np.zeros(width)
    scale = scaler.scale_ if scaler.with_std else np.ones(width)
    return LogisticEstimator(
        tuple(float(v) for v in mean),
        tuple(float(v) for v in scale),
        tuple(float(v) for v in logreg.coef_[0]),
        float(logreg.intercept_[0]),
    )


def _lightgbm_space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 500, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 64, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
    }


def _lightgbm_build(params: dict[str, Any], seed: int) -> Any:
    from lightgbm import LGBMClassifier

    return LGBMClassifier(**params, subsample_freq=1, random_state=seed, n_jobs=N_JOBS, verbose=-1)


def _lightgbm_native(model: Any) -> LightGBMEstimator:
    booster = model.booster_
    best = int(getattr(booster, "best_iteration", 0) or 0)
    width = booster.num_feature()
    # The compiled walk is checked against the booster here, where LightGBM is loaded;
    # the verdict travels with the artifact so serving needs no lightgbm import.
    compiled = compile_lightgbm(booster, width, best if best > 0 else None) is not None
    return LightGBMEstimator(booster.model_to_string(num_iteration=-1), width, best, compiled)


def _xgboost_space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 500, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 7),
        "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 20.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
    }


def _xgboost_build(params: dict[str, Any], seed: int) -> Any:
    from xgboost import XGBClassifier

    return XGBClassifier(**params, tree_method="hist", random_state=seed, n_jobs=N_JOBS)


def _xgboost_native(model: Any) -> XGBoostEstimator:
    booster = model.get_booster()
    begin, end = model._get_iteration_range(None)  # what predict_proba uses
    return XGBoostEstimator(booster.copy(), booster.num_features(), (begin, end))


CANDIDATES: dict[str, Candidate] = {
    c.name: c
    for c in (
        Candidate("logistic", _logistic_space, _logistic_build, _logistic_native),
        Candidate("lightgbm", _lightgbm_space, _lightgbm_build, _lightgbm_native),
        Candidate("xgboost", _xgboost_space, _xgboost_build, _xgboost_native),
    )
}


def get_candidate(name: str) -> Candidate:
    """Return the family called ``name`` or raise a ConfigError listing the known ones."""
    from churnops.errors import ConfigError

    try:
        return CANDIDATES[name]
    except KeyError:
        known = ", ".join(CANDIDATES)
        raise ConfigError(f"Unknown model family {name!r}; choose from: {known}.") from None
