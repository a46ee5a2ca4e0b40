"""Model families: the native estimators predict as the fitted ones, and explain exactly."""

from __future__ import annotations

import numpy as np
import pytest

from churnops.data.contract import infer_contract
from churnops.errors import ConfigError
from churnops.features import FeatureEncoder
from churnops.scoring.catboost_trees import CodeLayout
from churnops.training.candidates import CANDIDATES, get_candidate, layout_of
from tests.factories import make_customers

PARAMS = {
    "logistic": {"C": 1.0},
    "spline": {"n_knots": 6, "C": 1.0},
    "lightgbm": {
        "n_estimators": 40,
        "learning_rate": 0.1,
        "num_leaves": 8,
        "min_child_samples": 10,
        "subsample": 0.9,
        "colsample_bytree": 0.9,
        "reg_lambda": 1.0,
    },
    "xgboost": {
        "n_estimators": 40,
        "learning_rate": 0.1,
        "max_depth": 3,
        "min_child_weight": 1.0,
        "subsample": 0.9,
        "colsample_bytree": 0.9,
        "reg_lambda": 1.0,
    },
    "catboost": {
        "iterations": 40,
        "learning_rate": 0.1,
        "depth": 4,
        "l2_leaf_reg": 3.0,
        "random_strength": 1.0,
    },
}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, CodeLayout]:
    df = make_customers(500, seed=5)
    contract = infer_contract(df, "churn", "customer_id")
    encoder = FeatureEncoder(contract)
    X = encoder.transform(df)
    return X, contract.target_series(df["churn"]).to_numpy(dtype=int), layout_of(encoder)


@pytest.mark.parametrize("family", sorted(CANDIDATES))
def test_contributions_sum_to_log_odds(family: str, data) -> None:
    """Per-feature contributions plus the bias equal the model's logit for every row."""
    X, y, layout = data
    candidate = get_candidate(family)
    model = candidate.build(PARAMS[family], 0, layout).fit(X, y)
    contrib = candidate.to_native(model).contributions(X[:50])
    p = model.predict_proba(X[:50])[:, 1]
    np.testing.assert_allclose(contrib.sum(axis=1), np.log(p / (1 - p)), atol=1e-4)


@pytest.mark.parametrize("family", sorted(CANDIDATES))
def test_native_estimator_predicts_as_the_fitted_one(family: str, data) -> None:
    """The data-only estimator gives the fitted estimator's probabilities (XGBoost: float32)."""
    X, y, layout = data
    candidate = get_candidate(family)
    model = candidate.build(PARAMS[family], 0, layout).fit(X, y)
    native = candidate.to_native(model)
    tolerance = 1e-6 if family == "xgboost" else 1e-12
    np.testing.assert_allclose(
        native.probabilities(X), model.predict_proba(X)[:, 1], rtol=0, atol=tolerance
    )
    assert native.probabilities(X).dtype == np.float64


def test_lightgbm_contributions_match_shap(data) -> None:
    """The booster's own contributions equal shap.TreeExplainer's values."""
    import shap

    X, y, layout = data
    candidate = get_candidate("lightgbm")
    model = candidate.build(PARAMS["lightgbm"], 0, layout).fit(X, y)
    ours = candidate.to_native(model).contributions(X[:30])[:, :-1]
    theirs = shap.TreeExplainer(model).shap_values(X[:30])
    theirs = theirs[1] if isinstance(theirs, list) else theirs
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_layout_names_the_one_hot_blocks(data) -> None:
    """CatBoost gets each categorical's one-hot block as one code column (-1: no level)."""
    X, _y, layout = data
    assert [width for _start, width in layout.blocks] == [3, 3, 3]  # contract, internet, payment
    codes = layout.codes(X)
    for k, (start, width) in enumerate(layout.blocks):
        block = X[:, start : start + width]
        assert np.array_equal(codes[:, k], np.where(block.any(axis=1), block.argmax(axis=1), -1))
    frame = layout.frame(X)
    assert list(frame.columns[-3:]) == layout.cat_names
    assert len(frame.columns) == X.shape[1] - 9 + 3


def test_catboost_runs_half_the_trials_and_starts_from_its_defaults() -> None:
    """Its fits cost several LightGBM fits: half the budget, its defaults tried first."""
    from churnops.training.candidates import CATBOOST_DEFAULTS

    catboost = get_candidate("catboost")
    assert [catboost.trials(n) for n in (1, 2, 12)] == [1, 1, 6]
    assert get_candidate("lightgbm").trials(12) == 12
    assert catboost.first_trial == CATBOOST_DEFAULTS


def test_unknown_family_lists_the_known_ones() -> None:
    """An unknown family is a ConfigError naming the choices."""
    with pytest.raises(ConfigError, match="logistic, spline, lightgbm, xgboost, catboost"):
        get_candidate("lightning")
