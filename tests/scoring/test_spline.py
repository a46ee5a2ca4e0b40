"""The spline estimator: the fitted pipeline's numbers as data, exactly explained.

Its basis is scikit-learn's degree-1 ``SplineTransformer`` (constant beyond the end
knots), its margins are the fitted pipeline's ``decision_function``, one row is the batch
bit for bit, contributions sum to the margin, and the JSON round-trips.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.preprocessing import SplineTransformer

from churnops.scoring.catboost_trees import CodeLayout
from churnops.scoring.estimators import SplineEstimator, load_estimator
from churnops.training import spline

N_KNOTS = 6


def _table(n: int, seed: int) -> tuple[np.ndarray, CodeLayout]:
    """Two skewed numbers, a 0/1 flag, a constant and a 3-level one-hot block."""
    rng = np.random.default_rng(seed)
    level = rng.integers(0, 3, n)
    X = np.column_stack(
        [
            rng.exponential(20.0, n),
            rng.integers(0, 73, n).astype(float),  # repeated values: merged quantiles
            rng.integers(0, 2, n).astype(float),
            np.full(n, 7.0),
            *(level == k for k in range(3)),
        ]
    ).astype(float)
    return X, CodeLayout(X.shape[1], ((4, 3),))


@pytest.fixture(scope="module")
def fitted() -> tuple[object, SplineEstimator, np.ndarray]:
    """A fitted pipeline, its native estimator, and fresh rows partly beyond the knots."""
    X, layout = _table(800, seed=3)
    y = np.sin(X[:, 0] / 10) + X[:, 2] - X[:, 4] + np.random.default_rng(4).normal(size=800) > 0
    model = spline.build({"n_knots": N_KNOTS, "C": 0.7}, 0, layout).fit(X, y.astype(int))
    fresh, _ = _table(300, seed=5)
    fresh[:20, 0] = np.linspace(-50.0, 400.0, 20)  # below and above the training range
    return model, spline.to_native(model), fresh


def test_basis_is_scikit_learns_degree_one_spline() -> None:
    """Hat functions at the quantile knots = SplineTransformer(degree=1, constant ends)."""
    X, _layout = _table(500, seed=1)
    basis = spline.HatBasis((0,), N_KNOTS).fit(X)
    knots = basis.knots_[0]
    reference = SplineTransformer(
        degree=1, knots=knots.reshape(-1, 1), extrapolation="constant"
    ).fit(X[:, [0]])
    probe = np.concatenate([X[:, 0], [-5.0, 1e4]]).reshape(-1, 1)
    wide = np.zeros((len(probe), X.shape[1]))
    wide[:, 0] = probe[:, 0]
    ours = basis.transform(wide)[:, -len(knots) :]
    np.testing.assert_allclose(ours, reference.transform(probe), rtol=0, atol=1e-12)


def test_margins_are_the_pipelines_decision_function(fitted) -> None:
    """The folded coefficients and knot values give the fitted pipeline's log-odds."""
    model, native, fresh = fitted
    np.testing.assert_allclose(
        native.margins(fresh), model.decision_function(fresh), rtol=0, atol=1e-9
    )


def test_numbers_get_splines_and_the_rest_coefficients(fitted) -> None:
    """Every non-constant column outside a block is a spline; flags get two knots."""
    _model, native, _fresh = fitted
    assert native.columns == (0, 1, 2)
    assert len(native.knots[0]) == N_KNOTS
    assert native.knots[2] == (0.0, 1.0)
    assert [native.coef[c] for c in native.columns] == [0.0, 0.0, 0.0]


def test_one_row_is_the_batch_bit_for_bit(fitted) -> None:
    """margin_one runs the batch kernel on one row: the same number, not just close."""
    _model, native, fresh = fitted
    one = np.array([native.margin_one(row) for row in fresh.tolist()])
    assert np.array_equal(one, native.margins(fresh))


def test_contributions_sum_to_the_margin_around_the_mean_row(fitted) -> None:
    """Exact additive SHAP: per-column terms plus the bias are the margin; the bias is
    the mean training margin, and a constant column contributes nothing."""
    model, native, fresh = fitted
    contrib = native.contributions(fresh)
    assert contrib.shape == (len(fresh), native.width + 1)
    np.testing.assert_allclose(contrib.sum(axis=1), native.margins(fresh), rtol=0, atol=1e-9)
    X, _ = _table(800, seed=3)
    np.testing.assert_allclose(contrib[0, -1], model.decision_function(X).mean(), atol=1e-9)
    np.testing.assert_allclose(contrib[:, 3], 0.0, atol=1e-12)


def test_save_load_round_trip(fitted, tmp_path: Path) -> None:
    """estimator.json holds JSON numbers only and reloads to the same margins, bit for bit."""
    _model, native, fresh = fitted
    assert native.save(tmp_path) == ["estimator.json"]
    meta = json.loads((tmp_path / "estimator.json").read_text())
    assert meta["family"] == "spline"
    assert len(meta["splines"]) == 3
    loaded = load_estimator("spline", tmp_path)
    assert loaded == native
    assert np.array_equal(loaded.margins(fresh), native.margins(fresh))


@pytest.mark.parametrize(
    ("knots", "values", "message"),
    [((0.0,), (1.0,), "2\\+ knots"), ((1.0, 0.0), (1.0, 2.0), "increase")],
)
def test_bad_knots_are_refused(knots, values, message: str) -> None:
    """A spline needs two or more increasing knots, one value each."""
    with pytest.raises(ValueError, match=message):
        SplineEstimator((0.0,), (0.0,), (0,), (knots,), (values,), (0.0,), 0.0)
