"""The spline family through the normal path: tuned, registered, loaded, explained."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from churnops.config import Settings
from churnops.registry.models import load_model
from churnops.scoring.estimators import SplineEstimator
from churnops.stages import train_and_register
from tests.conftest import home_tracking_uri
from tests.factories import make_customers


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A home whose champion is a spline model trained on a small table."""
    home: Path = tmp_path_factory.mktemp("spline") / "home"
    settings = Settings(home=home, trials=2, cv_folds=3, tracking_uri=home_tracking_uri(home))
    train_and_register(
        make_customers(600, seed=11),
        settings,
        target="churn",
        id_column="customer_id",
        families=["spline"],
    )
    return settings


def test_spline_is_a_default_family() -> None:
    """It errs unlike the others, so the blend tries it by default (bench/README.md)."""
    assert "spline" in Settings().families


def test_registered_spline_loads_and_scores_as_trained(home: Settings) -> None:
    """The registered artifact is a SplineEstimator whose splines bend the numbers."""
    loaded = load_model(home)
    model = loaded.model
    assert model.family == "spline"
    assert isinstance(model.estimator, SplineEstimator)
    numbers = [model.encoder.feature_names[c] for c in model.estimator.columns]
    assert {"tenure", "monthly_charges"} <= set(numbers)
    frame = make_customers(50, seed=12)
    p = model.predict_frame(frame)["probability"].to_numpy()
    assert np.all((p > 0) & (p < 1))


def test_reasons_sum_to_the_margin(home: Settings) -> None:
    """Per-source contributions plus the bias are the model's log-odds, row for row."""
    model = load_model(home).model
    X = model.encoder.transform(make_customers(30, seed=13))
    contrib = model.estimator.contributions(X)
    grouped = model.encoder.group_by_source(contrib)
    np.testing.assert_allclose(
        grouped.sum(axis=1) + contrib[:, -1], model.estimator.margins(X), atol=1e-9
    )
