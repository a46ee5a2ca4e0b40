"""CatBoost as a native estimator: its JSON model, walked by compiled code, exact to CatBoost.

The categorical splits are CatBoost's own target statistics, compiled into per-level
tables read from CatBoost; these tests hold the walk to CatBoost's numbers (1e-12), one
row to the batch (bit for bit), the files to the model, and the fallback to CatBoost.
"""

from __future__ import annotations

import ast
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from churnops.data.contract import infer_contract
from churnops.features import FeatureEncoder
from churnops.scoring.catboost_trees import CodeLayout, load_catboost
from churnops.scoring.estimators import CatBoostEstimator, load_estimator
from churnops.training.candidates import get_candidate, layout_of
from tests.factories import make_customers

PARAMS = {
    "iterations": 40,
    "learning_rate": 0.2,
    "depth": 4,
    "l2_leaf_reg": 3.0,
    "random_strength": 1.0,
}


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, CatBoostEstimator, np.ndarray]:
    """A small CatBoost fitted on customers with three categoricals, and its native form."""
    df = make_customers(600, seed=41)
    contract = infer_contract(df, "churn", "customer_id")
    encoder = FeatureEncoder(contract)
    X = encoder.transform(df)
    y = contract.target_series(df["churn"]).to_numpy(dtype=int)
    candidate = get_candidate("catboost")
    model = candidate.build(PARAMS, 0, layout_of(encoder)).fit(X, y)
    probe = encoder.transform(make_customers(400, seed=42))
    return model, candidate.to_native(model), probe


def _catboost_raw(model: Any, X: np.ndarray) -> np.ndarray:
    pool = model.layout.pool(X)
    return np.asarray(model.model.predict(pool, prediction_type="RawFormulaVal"))


def test_the_walk_is_compiled_and_equals_catboost(fitted: Any) -> None:
    """Verified at training time, and CatBoost's raw score on new rows to 1e-12."""
    model, native, X = fitted
    assert native.compiled
    assert native.tables  # the categoricals were split on, through CatBoost's statistics
    np.testing.assert_allclose(native.margins(X), _catboost_raw(model, X), rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        native.probabilities(X), model.predict_proba(X)[:, 1], rtol=0, atol=1e-12
    )


def test_one_row_is_the_batch_bit_for_bit(fitted: Any) -> None:
    """margin_one equals margins row for row, bit for bit (lists as the API sends them)."""
    _model, native, X = fitted
    one = np.array([native.margin_one(row) for row in X.tolist()])
    assert np.array_equal(one, native.margins(X))


def test_contributions_are_catboost_shap_and_sum_to_the_margin(fitted: Any) -> None:
    """Bias last; a categorical's SHAP sits in its block; rows sum to the log-odds."""
    model, native, X = fitted
    contributions = native.contributions(X[:60])
    assert contributions.shape == (60, native.width + 1)
    np.testing.assert_allclose(contributions.sum(axis=1), native.margins(X[:60]), atol=1e-9)
    shap = model.model.get_feature_importance(model.layout.pool(X[:60]), type="ShapValues")
    np.testing.assert_allclose(contributions[:, -1], shap[:, -1], atol=1e-12)
    for k, (start, width) in enumerate(native.layout.blocks):
        block = contributions[:, start : start + width]
        np.testing.assert_allclose(block.sum(axis=1), shap[:, len(native.layout.dense) + k])


def test_save_and_load_give_identical_margins(fitted: Any, tmp_path: Path) -> None:
    """The JSON model and the tables round-trip: the same bits, still compiled."""
    _model, native, X = fitted
    files = native.save(tmp_path)
    assert sorted(files) == ["catboost_model.json", "estimator.json"]
    loaded = load_estimator("catboost", tmp_path)
    assert isinstance(loaded, CatBoostEstimator)
    assert loaded.compiled
    assert np.array_equal(loaded.margins(X), native.margins(X))
    np.testing.assert_allclose(loaded.contributions(X[:5]), native.contributions(X[:5]), atol=1e-12)


def test_pickled_for_spark_it_rebuilds_the_walk(fitted: Any) -> None:
    """Only the data travels; the receiving side compiles again and scores the same bits."""
    _model, native, X = fitted
    state = pickle.dumps(native)
    assert b"ObliviousTrees" not in state
    copy = pickle.loads(state)
    assert copy.compiled
    assert np.array_equal(copy.margins(X), native.margins(X))


def test_without_tables_catboost_itself_scores(fitted: Any) -> None:
    """An unverified walk (no tables) falls back to CatBoost's predict, one row = batch."""
    _model, native, X = fitted
    fallback = CatBoostEstimator(native.model_text, native.layout, None)
    assert not fallback.compiled
    np.testing.assert_allclose(fallback.margins(X), native.margins(X), rtol=0, atol=1e-12)
    one = np.array([fallback.margin_one(row) for row in X[:20].tolist()])
    assert np.array_equal(one, fallback.margins(X[:20]))


def test_missing_values_and_unknown_levels_walk_as_in_catboost() -> None:
    """NaN numbers (both NaN policies) and an all-zero block (code -1) agree with CatBoost."""
    from catboost import CatBoostClassifier

    from churnops.scoring.catboost_trees import compile_catboost, export_json

    rng = np.random.default_rng(7)
    n = 800
    X = np.zeros((n, 6))
    X[:, :3] = rng.normal(size=(n, 3))
    X[rng.random(n) < 0.2, 1] = np.nan
    level = rng.integers(-1, 3, size=n)  # -1: no level set
    X[np.flatnonzero(level >= 0), 3 + level[level >= 0]] = 1.0
    y = (np.nan_to_num(X[:, 0]) + np.isnan(X[:, 1]) + (level == 1) > 0.5).astype(int)
    layout = CodeLayout(6, ((3, 3),))
    for nan_mode in ("Min", "Max"):
        model = CatBoostClassifier(
            iterations=30,
            depth=3,
            nan_mode=nan_mode,
            cat_features=layout.cat_names,
            max_ctr_complexity=1,
            verbose=0,
            thread_count=1,
            allow_writing_files=False,
        ).fit(layout.frame(X), y)
        text = export_json(model, layout)
        reloaded = load_catboost(text)
        tables = compile_catboost(reloaded, text, layout)
        assert tables is not None
        native = CatBoostEstimator(text, layout, tables)
        expected = reloaded.predict(layout.pool(X), prediction_type="RawFormulaVal")
        np.testing.assert_allclose(native.margins(X), expected, rtol=0, atol=1e-12)


def test_compiled_scoring_imports_no_catboost(fitted: Any, tmp_path: Path) -> None:
    """A serving process scores a compiled model from the files without importing catboost."""
    _model, native, X = fitted
    native.save(tmp_path)
    np.save(tmp_path / "rows.npy", X[:5])
    code = (
        "import sys, numpy as np; from pathlib import Path\n"
        "from churnops.scoring.estimators import load_estimator\n"
        f"folder = Path({str(tmp_path)!r})\n"
        "est = load_estimator('catboost', folder)\n"
        "print(repr(est.margins(np.load(folder / 'rows.npy')).tolist()))\n"
        "assert 'catboost' not in sys.modules, 'catboost was imported'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert ast.literal_eval(out.stdout) == native.margins(X[:5]).tolist()
