"""Model families as entries: a builder, a search space and a contribution function each.

Adding a family is adding an entry to :data:`CANDIDATES`; the tuner never names one.
Contributions are exact SHAP values in the model's log-odds space — TreeSHAP from the
boosters' own ``pred_contrib`` and linear SHAP for the logistic model — so per-customer
reasons cost one extra predict call and need no explainer object in the artifact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import optuna

N_JOBS = 2


@dataclass(frozen=True)
class Candidate:
    """One model family: how to sample its parameters, build it, and explain it."""

    name: str
    suggest: Callable[[optuna.Trial], dict[str, Any]]
    build: Callable[[dict[str, Any], int], Any]
    contributions: Callable[[Any, np.ndarray], np.ndarray]
    """Return an (n, features + 1) array: per-feature log-odds contributions, then the bias."""


def _logistic_space(trial: optuna.Trial) -> dict[str, Any]:
    return {"C": trial.suggest_float("C", 1e-3, 100.0, log=True)}


def _logistic_build(params: dict[str, Any], seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = LogisticRegression(C=params["C"], max_iter=2000, random_state=seed)
    return make_pipeline(StandardScaler(), model)


def _logistic_contributions(model: Any, X: np.ndarray) -> np.ndarray:
    scaler, logreg = model[0], model[-1]
    coef = logreg.coef_[0] / scaler.scale_
    # Linear SHAP: contribution relative to the training mean, so the bias is the mean margin.
    contrib = (X - scaler.mean_) * coef
    bias = np.full((X.shape[0], 1), logreg.intercept_[0])
    return np.hstack([contrib, bias])


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


def _lightgbm_contributions(model: Any, X: np.ndarray) -> np.ndarray:
    return np.asarray(model.booster_.predict(X, pred_contrib=True))


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


def _xgboost_contributions(model: Any, X: np.ndarray) -> np.ndarray:
    from xgboost import DMatrix

    return np.asarray(model.get_booster().predict(DMatrix(X), pred_contribs=True))


CANDIDATES: dict[str, Candidate] = {
    c.name: c
    for c in (
        Candidate("logistic", _logistic_space, _logistic_build, _logistic_contributions),
        Candidate("lightgbm", _lightgbm_space, _lightgbm_build, _lightgbm_contributions),
        Candidate("xgboost", _xgboost_space, _xgboost_build, _xgboost_contributions),
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
