"""XGBoost as a compiled walk: XGBoost's margins, one row bit for bit the batch, no xgboost.

The walk repeats XGBoost's float32 arithmetic, so these tests hold it to XGBoost's own
``inplace_predict`` margins within ``CHECK_TOLERANCE`` (in practice the same bits) on
rows with missing values and at every split condition, one row to the batch exactly,
the compiled flag through save, load and pickle, old artifacts to XGBoost's predict, and
unsupported models to the fallback.
"""

from __future__ import annotations

import ast
import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost

from churnops.scoring import xgboost_trees
from churnops.scoring.estimators import XGBoostEstimator, load_estimator
from churnops.scoring.xgboost_trees import (
    CHECK_TOLERANCE,
    compile_xgboost,
    parse_xgboost,
    read_ubjson,
)

WIDTH = 6
FIXTURE = Path(__file__).parents[1] / "fixtures" / "artifacts" / "xgboost" / "model"


def _data(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows with ~10% missing values; the label depends on missingness too."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, WIDTH))
    X[rng.random(X.shape) < 0.1] = np.nan
    y = np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) ** 2 + np.isnan(X[:, 2])
    return X, (y + rng.normal(size=n) > 0.8).astype(int)


# name -> (max_depth, n_estimators, early stopping, base_score)
CONFIGS = {
    "stumps": (1, 30, False, None),
    "depth4": (4, 60, False, None),
    "depth6": (6, 40, False, 0.3),
    "early-stopped": (3, 200, True, None),
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def fitted(request: Any) -> tuple[Any, tuple[int, int], XGBoostEstimator]:
    """A small XGBClassifier, its iteration range and its compiled native estimator."""
    depth, trees, early, base_score = CONFIGS[request.param]
    X, y = _data(3, 1200)
    model = xgboost.XGBClassifier(
        n_estimators=trees,
        max_depth=depth,
        learning_rate=0.4 if early else 0.2,
        tree_method="hist",
        n_jobs=1,
        base_score=base_score,
        early_stopping_rounds=5 if early else None,
    )
    model.fit(X[:900], y[:900], eval_set=[(X[900:], y[900:])], verbose=False)
    booster = model.get_booster()
    begin, end = model._get_iteration_range(None)
    compiled = compile_xgboost(booster, WIDTH, (begin, end)) is not None
    return booster, (begin, end), XGBoostEstimator(booster, WIDTH, (begin, end), compiled)


def _xgboost_margins(booster: Any, X: np.ndarray, iteration_range: tuple[int, int]) -> np.ndarray:
    out = booster.inplace_predict(X, iteration_range=iteration_range, predict_type="margin")
    return np.asarray(out, dtype=np.float64)


def test_compiled_margins_are_xgboosts(fitted: Any) -> None:
    """Verified at training time; new rows with NaNs score as XGBoost's margin."""
    booster, iteration_range, native = fitted
    assert native.compiled
    X, _y = _data(4, 3000)
    np.testing.assert_allclose(
        native.margins(X),
        _xgboost_margins(booster, X, iteration_range),
        rtol=0,
        atol=CHECK_TOLERANCE,
    )


def test_with_the_locked_xgboost_the_walk_is_the_same_bits(fitted: Any) -> None:
    """Stronger than the tolerance: XGBoost's float32 operations in XGBoost's order.

    ``CHECK_TOLERANCE`` is the contract (an XGBoost upgrade may reorder its float32 sum;
    training then still verifies within it). With the XGBoost in uv.lock the margins are
    identical, so a walk that sums in another order or rounds differently fails here.
    """
    booster, iteration_range, native = fitted
    X, _y = _data(12, 2000)
    assert np.array_equal(native.margins(X), _xgboost_margins(booster, X, iteration_range))


def test_split_conditions_and_their_neighbours_go_xgboosts_way(fitted: Any) -> None:
    """At a condition, one float32 ulp below, and a float64 ulp below (rounds back up)."""
    booster, iteration_range, native = fitted
    assert native.trees is not None
    features, conditions = native.trees.split_arrays()
    rows = []
    for f, cut in zip(features.tolist(), conditions.tolist(), strict=True):
        for value in (cut, np.nextafter(cut, -np.inf), float(np.nextafter(np.float32(cut), -1e30))):
            row = np.full(WIDTH, np.nan)  # the other features missing: default directions
            row[f] = value
            rows.append(row)
    X = np.array(rows)
    np.testing.assert_allclose(
        native.margins(X),
        _xgboost_margins(booster, X, iteration_range),
        rtol=0,
        atol=CHECK_TOLERANCE,
    )


def test_one_row_is_the_batch_bit_for_bit(fitted: Any) -> None:
    """margin_one equals margins row for row, bit for bit (lists as the API sends them)."""
    _booster, _range, native = fitted
    X, _y = _data(5, 500)
    one = np.array([native.margin_one(row) for row in X.tolist()])
    assert np.array_equal(one, native.margins(X))


def test_only_the_iteration_range_is_walked() -> None:
    """Early stopping keeps the first rounds: the walk stops there, as XGBoost's predict."""
    X, y = _data(6, 1200)
    model = xgboost.XGBClassifier(
        n_estimators=300, max_depth=3, learning_rate=0.5, n_jobs=1, early_stopping_rounds=3
    )
    model.fit(X[:900], y[:900], eval_set=[(X[900:], y[900:])], verbose=False)
    booster = model.get_booster()
    begin, end = model._get_iteration_range(None)
    assert 0 < end < booster.num_boosted_rounds()
    compiled = compile_xgboost(booster, WIDTH, (begin, end))
    assert compiled is not None
    everything = parse_xgboost(bytes(booster.save_raw("ubj")), WIDTH, (0, 0))
    assert everything is not None
    assert len(compiled.roots) == end < len(everything.roots)
    ranged = _xgboost_margins(booster, X, (begin, end))
    np.testing.assert_allclose(compiled.raw_many(X), ranged, rtol=0, atol=CHECK_TOLERANCE)
    assert not np.allclose(everything.raw_many(X), ranged, atol=1e-3)


def test_save_load_and_pickle_keep_the_compiled_walk(fitted: Any, tmp_path: Path) -> None:
    """The flag is in estimator.json; loading compiles again and gives the same bits."""
    _booster, iteration_range, native = fitted
    X, _y = _data(7, 300)
    assert sorted(native.save(tmp_path)) == ["estimator.json", "xgboost_model.ubj"]
    meta = json.loads((tmp_path / "estimator.json").read_text())
    assert meta["compiled"] is True
    assert meta["iteration_range"] == list(iteration_range)
    loaded = load_estimator("xgboost", tmp_path)
    assert isinstance(loaded, XGBoostEstimator)
    assert loaded.compiled
    assert np.array_equal(loaded.margins(X), native.margins(X))
    np.testing.assert_allclose(loaded.contributions(X[:5]), native.contributions(X[:5]), atol=1e-6)
    state = pickle.dumps(native)
    assert b"CompiledXGBoost" not in state
    copy = pickle.loads(state)
    assert copy.compiled
    assert np.array_equal(copy.margins(X), native.margins(X))


def test_old_artifacts_without_the_flag_keep_xgboosts_predict(fitted: Any, tmp_path: Path) -> None:
    """No ``compiled`` key (written before the walk): XGBoost scores, numbers unchanged."""
    booster, iteration_range, native = fitted
    native.save(tmp_path)
    meta = json.loads((tmp_path / "estimator.json").read_text())
    del meta["compiled"]
    (tmp_path / "estimator.json").write_text(json.dumps(meta))
    old = load_estimator("xgboost", tmp_path)
    assert isinstance(old, XGBoostEstimator)
    assert not old.compiled
    assert old.trees is None
    X, _y = _data(8, 200)
    assert np.array_equal(old.margins(X), _xgboost_margins(booster, X, iteration_range))
    assert old.margin_one(X[0]) == old.margins(X[:1])[0]


def test_the_committed_fixture_loads_as_before() -> None:
    """tests/fixtures' XGBoost artifact (no flag) scores exactly as XGBoost's own booster."""
    meta = json.loads((FIXTURE / "estimator.json").read_text())
    assert "compiled" not in meta
    old = load_estimator("xgboost", FIXTURE)
    assert isinstance(old, XGBoostEstimator)
    assert not old.compiled
    reference = xgboost.Booster()
    reference.load_model(str(FIXTURE / meta["model_file"]))
    X = np.random.default_rng(9).normal(size=(50, meta["width"]))
    expected = _xgboost_margins(reference, X, tuple(meta["iteration_range"]))
    assert np.array_equal(old.margins(X), expected)
    # The same file compiles, and to XGBoost's numbers (what a retrained model gets).
    walked = parse_xgboost((FIXTURE / meta["model_file"]).read_bytes(), meta["width"], (0, 0))
    assert walked is not None
    np.testing.assert_allclose(walked.raw_many(X), expected, rtol=0, atol=CHECK_TOLERANCE)


def test_a_wrong_walk_is_refused(fitted: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The self-check has teeth: a base margin off by 1e-3 makes compile return None."""
    booster, iteration_range, _native = fitted
    real = xgboost_trees.base_margin
    monkeypatch.setattr(xgboost_trees, "base_margin", lambda p: real(p) + 1e-3)
    assert compile_xgboost(booster, WIDTH, iteration_range) is None


def test_unsupported_models_fall_back_to_xgboost() -> None:
    """Categorical splits and other objectives are not compiled; XGBoost itself scores."""
    import pandas as pd

    X, y = _data(10, 600)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(WIDTH)])
    frame["x5"] = pd.Categorical(np.where(y == 1, "a", np.where(X[:, 5] > 0, "b", "c")))
    model = xgboost.XGBClassifier(
        n_estimators=10, max_depth=3, n_jobs=1, enable_categorical=True, tree_method="hist"
    ).fit(frame, y)
    booster = model.get_booster()
    assert compile_xgboost(booster, WIDTH, (0, 0)) is None
    regression = xgboost.train(
        {"objective": "reg:squarederror", "max_depth": 2, "nthread": 1},
        xgboost.DMatrix(X, label=y),
        num_boost_round=5,
    )
    assert compile_xgboost(regression, WIDTH, (0, 0)) is None
    fallback = XGBoostEstimator(booster, WIDTH, (0, 0), compiled=True)  # asked, but refused
    assert not fallback.compiled
    assert fallback.margins(np.zeros((2, WIDTH))).shape == (2,)


def test_ubjson_reader_reads_what_xgboost_writes(fitted: Any) -> None:
    """The decoder gives XGBoost's own JSON view: same keys, same float32 numbers."""
    booster, _range, _native = fitted
    ours = read_ubjson(bytes(booster.save_raw("ubj")))["learner"]
    theirs = json.loads(booster.save_raw("json"))["learner"]
    assert ours["learner_model_param"] == theirs["learner_model_param"]
    assert ours["objective"]["name"] == theirs["objective"]["name"]
    for a, b in zip(
        ours["gradient_booster"]["model"]["trees"],
        theirs["gradient_booster"]["model"]["trees"],
        strict=True,
    ):
        assert a["split_conditions"].dtype == np.float32
        assert np.array_equal(a["split_conditions"], np.float32(b["split_conditions"]))
        assert a["left_children"].tolist() == b["left_children"]


def test_compiled_scoring_imports_no_xgboost(fitted: Any, tmp_path: Path) -> None:
    """A serving process scores a compiled model from the files without importing xgboost."""
    _booster, _range, native = fitted
    X, _y = _data(11, 5)
    native.save(tmp_path)
    np.save(tmp_path / "rows.npy", X)
    code = (
        "import sys, numpy as np; from pathlib import Path\n"
        "from churnops.scoring.estimators import load_estimator\n"
        f"folder = Path({str(tmp_path)!r})\n"
        "est = load_estimator('xgboost', folder)\n"
        "rows = np.load(folder / 'rows.npy')\n"
        "print(repr([est.margin_one(r) for r in rows]))\n"
        "assert 'xgboost' not in sys.modules, 'xgboost was imported'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert ast.literal_eval(out.stdout) == native.margins(X).tolist()
