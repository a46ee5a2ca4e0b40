"""LightGBM's C library called directly gives LightGBM's own numbers, without its package."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from churnops.scoring import lightgbm_c


@pytest.fixture(scope="module")
def booster() -> object:
    import lightgbm

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6))
    y = (X[:, 0] - X[:, 3] + rng.normal(size=400) > 0).astype(int)
    params = {"objective": "binary", "verbose": -1, "num_leaves": 7}
    return lightgbm.train(params, lightgbm.Dataset(X, y), 25), X


def test_raw_scores_and_contributions_equal_the_packages(booster: tuple) -> None:
    """Raw scores and TreeSHAP contributions are bit-identical to lightgbm.Booster.predict."""
    model, X = booster
    ours = lightgbm_c.Booster(model.model_to_string())
    assert (
        ours.predict(X, lightgbm_c.PREDICT_RAW_SCORE).tobytes()
        == np.asarray(model.predict(X, raw_score=True), dtype=np.float64).tobytes()
    )
    contrib = ours.predict(X, lightgbm_c.PREDICT_CONTRIB, num_iteration=10)
    assert contrib.shape == (len(X), X.shape[1] + 1)
    np.testing.assert_array_equal(contrib, model.predict(X, pred_contrib=True, num_iteration=10))


def test_a_bad_model_text_is_an_error_with_lightgbms_message() -> None:
    """Text that is not a LightGBM model raises with the library's own words."""
    with pytest.raises(RuntimeError, match="LightGBM"):
        lightgbm_c.Booster("not a model")


def test_explaining_imports_neither_lightgbm_nor_sklearn(booster: tuple) -> None:
    """In a fresh process, contributions need neither the lightgbm package nor scikit-learn."""
    model, _ = booster
    code = (
        "import sys, numpy as np\n"
        "from churnops.scoring import lightgbm_c\n"
        "b = lightgbm_c.Booster(sys.stdin.read())\n"
        "b.predict(np.zeros((2, 6)), lightgbm_c.PREDICT_CONTRIB)\n"
        "print(sorted({'lightgbm', 'sklearn'} & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=model.model_to_string(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"
