"""Model families as entries: a search space, a builder and a converter to the native model.

Adding a family is adding an entry to :data:`CANDIDATES` (and its native estimator in
:mod:`churnops.scoring.estimators`); the tuner never names one. Training fits the
scikit-learn-style estimator; ``to_native`` turns the fitted one into the data-only model
the artifact stores and every scoring path uses (which also owns the exact SHAP
contributions), so nothing fitted here is ever pickled or needed at serving time.

Every builder gets the encoder's :class:`CodeLayout` (which columns are one-hot blocks):
CatBoost reads each block as one categorical column, the spline family bends every
column outside a block (:mod:`churnops.training.spline`); the other families ignore it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from churnops.scoring.catboost_trees import (
    CodeLayout,
    compile_catboost,
    export_json,
    load_catboost,
)
from churnops.scoring.estimators import (
    CatBoostEstimator,
    Estimator,
    LightGBMEstimator,
    LogisticEstimator,
    XGBoostEstimator,
)
from churnops.scoring.trees import compile_lightgbm
from churnops.training import spline

if TYPE_CHECKING:
    import optuna

    from churnops.features.encoder import FeatureEncoder

N_JOBS = 2


@dataclass(frozen=True)
class Candidate:
    """One model family: how to sample its parameters, build it, and convert the fitted one."""

    name: str
    suggest: Callable[[optuna.Trial], dict[str, Any]]
    build: Callable[[dict[str, Any], int, CodeLayout], Any]
    """Return an unfitted scikit-learn-style estimator for ``(params, seed, layout)``."""
    to_native: Callable[[Any], Estimator]
    """Return the fitted estimator as a native, data-only scoring estimator."""
    trial_share: float = 1.0
    """This family's trials as a share of the per-family budget (see :meth:`trials`)."""
    first_trial: dict[str, Any] | None = None
    """Parameters tried first (a known-good start for a family given few trials)."""

    def trials(self, budget: int) -> int:
        """Return how many trials this family gets when each family is given ``budget``."""
        return max(1, round(budget * self.trial_share))


def layout_of(encoder: FeatureEncoder) -> CodeLayout:
    """Return the encoder's one-hot blocks as the layout every builder gets."""
    blocks = tuple((r.start, r.width) for r in encoder.rules if r.kind == "categorical")
    return CodeLayout(encoder.width, blocks)


def _logistic_space(trial: optuna.Trial) -> dict[str, Any]:
    return {"C": trial.suggest_float("C", 1e-3, 100.0, log=True)}


def _logistic_build(params: dict[str, Any], seed: int, layout: CodeLayout) -> Any:
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
    """LightGBM's search space: at most 200 trees, with learning rates to match.

    Trees are what a served row pays for (one walk per tree), so the space prices them:
    30-200 trees at rates 0.02-0.3 instead of 50-500 at 0.01-0.2. On PyCaret's split
    (bench/quality.py, 2026-11-30) the demo's LightGBM kept its holdout ROC-AUC (0.8487 →
    0.8488) at 3.3 instead of 5.5 µs a row, the demo blend its 0.8514 at 6.2 instead of
    7.9 µs, and call-detail and the linear table picked the same models at the same AUC.
    """
    return {
        "n_estimators": trial.suggest_int("n_estimators", 30, 200, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 64, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
    }


def _lightgbm_build(params: dict[str, Any], seed: int, layout: CodeLayout) -> Any:
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


def _xgboost_build(params: dict[str, Any], seed: int, layout: CodeLayout) -> Any:
    from xgboost import XGBClassifier

    return XGBClassifier(**params, tree_method="hist", random_state=seed, n_jobs=N_JOBS)


def _xgboost_native(model: Any) -> XGBoostEstimator:
    from churnops.scoring.xgboost_trees import compile_xgboost

    booster = model.get_booster()
    begin, end = model._get_iteration_range(None)  # what predict_proba uses
    width = booster.num_features()
    # As for LightGBM: the walk is checked against the booster here, where XGBoost is
    # loaded, and the verdict travels with the artifact so serving needs no xgboost.
    compiled = compile_xgboost(booster, width, (begin, end)) is not None
    return XGBoostEstimator(booster.copy(), width, (begin, end), compiled)


ONE_HOT_MAX_SIZE = 10  # CatBoost: one-hot splits up to this many levels, CTRs above

CATBOOST_DEFAULTS: dict[str, Any] = {
    "iterations": 300,
    "learning_rate": 0.06,
    "depth": 5,
    "l2_leaf_reg": 3.0,
    "random_strength": 1.0,
}


def _catboost_space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "iterations": trial.suggest_int("iterations", 100, 600, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
        "depth": trial.suggest_int("depth", 3, 7),
        "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", 0.5, 30.0, log=True),
        "random_strength": trial.suggest_float("random_strength", 0.1, 10.0, log=True),
    }


class CatBoostOnCodes:
    """``CatBoostClassifier`` fed each one-hot block as one categorical column (integer codes).

    So CatBoost handles categoricals natively: a column of more than ``ONE_HOT_MAX_SIZE``
    levels gets CatBoost's ordered target statistics (CTRs), a smaller one CatBoost's own
    one-hot splits. Measured on PyCaret's split of the demo table (ten categoricals of
    2-4 levels), CTRs on every categorical cost 3-4x the fitting time for the same CV
    ROC-AUC (0.8487 either way, 12 trials); on the call-detail table, CTRs on ``state``
    (51 levels) are what lifts CatBoost above the other families. Statistics are limited
    to single columns (``max_ctr_complexity=1``): a split on a combination of columns has
    no per-level table, which the compiled one-row walk
    (:mod:`churnops.scoring.catboost_trees`) needs; combinations did not score better in
    CV on either table.
    """

    def __init__(self, params: dict[str, Any], seed: int, layout: CodeLayout) -> None:
        from catboost import CatBoostClassifier

        self.layout = layout
        self.model = CatBoostClassifier(
            **params,
            cat_features=layout.cat_names,
            one_hot_max_size=ONE_HOT_MAX_SIZE,
            max_ctr_complexity=1,
            random_seed=seed,
            thread_count=N_JOBS,
            verbose=0,
            allow_writing_files=False,
        )

    def fit(self, X: np.ndarray, y: np.ndarray) -> CatBoostOnCodes:
        """Fit on CatBoost's view of the encoded matrix."""
        self.model.fit(self.layout.frame(X), y)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Return CatBoost's class probabilities for an encoded matrix."""
        return np.asarray(self.model.predict_proba(self.layout.frame(X)))


def _catboost_build(params: dict[str, Any], seed: int, layout: CodeLayout) -> Any:
    return CatBoostOnCodes(params, seed, layout)


def _catboost_native(model: CatBoostOnCodes) -> CatBoostEstimator:
    text = export_json(model.model, model.layout)
    # The compiled walk and its categorical tables are read from, and checked against,
    # CatBoost here, where it is loaded (from the very file the artifact will hold).
    tables = compile_catboost(load_catboost(text), text, model.layout)
    return CatBoostEstimator(text, model.layout, tables)


CANDIDATES: dict[str, Candidate] = {
    c.name: c
    for c in (
        Candidate("logistic", _logistic_space, _logistic_build, _logistic_native),
        Candidate("spline", spline.space, spline.build, spline.to_native),
        Candidate("lightgbm", _lightgbm_space, _lightgbm_build, _lightgbm_native),
        Candidate("xgboost", _xgboost_space, _xgboost_build, _xgboost_native),
        # A CatBoost fit costs several LightGBM fits; its defaults are strong, so it
        # starts from them and gets half the trials (see Settings.trials).
        Candidate(
            "catboost",
            _catboost_space,
            _catboost_build,
            _catboost_native,
            trial_share=0.5,
            first_trial=CATBOOST_DEFAULTS,
        ),
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
