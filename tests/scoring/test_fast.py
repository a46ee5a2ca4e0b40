"""The fast path is exact: records -> codec -> FastScorer equals the model's own scoring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from churnops.config import Settings
from churnops.scoring import FastScorer, RecordCodec
from churnops.training.calibration import fit_calibrator
from tests.factories import make_customers


def _records(df: pd.DataFrame, drop: str = "churn") -> list[dict[str, Any]]:
    rows = df.drop(columns=[drop]).to_dict("records")
    return [
        {k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in rows
    ]


@pytest.fixture(scope="module", params=["logistic", "lightgbm", "xgboost"])
def family_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from churnops.training.run import train

    settings = Settings(home=tmp_path_factory.mktemp("fast") / "home", trials=1, cv_folds=2)
    result = train(
        make_customers(500, seed=4),
        settings,
        target="churn",
        id_column="customer_id",
        families=[request.param],
        trials=1,
    )
    return result.model


def test_codec_rows_equal_the_encoder(family_model: Any) -> None:
    """RecordCodec produces exactly the FeatureEncoder's matrix."""
    df = make_customers(300, seed=5)
    codec = RecordCodec(family_model.contract)
    rows = np.array([codec.encode(r) for r in _records(df)])
    assert np.array_equal(rows, family_model.encoder.transform(df))


@pytest.mark.parametrize("calibration", [None, "sigmoid", "isotonic"])
def test_fast_scorer_equals_model_probabilities(family_model: Any, calibration: Any) -> None:
    """For every family and calibrator, one-row and batch paths match predict_proba."""
    df = make_customers(300, seed=6)
    X = family_model.encoder.transform(df)
    if calibration:
        raw = family_model.estimator.predict_proba(X)[:, 1]
        y = (df["churn"] == "Yes").to_numpy(dtype=int)
        family_model.calibrator = fit_calibrator(calibration, raw, y)
    try:
        expected = family_model.probabilities(X)
        scorer = FastScorer(family_model)
        one = np.array([scorer.one(row) for row in X.tolist()])
        assert np.abs(one - expected).max() < 1e-6  # XGBoost sums in float32
        assert np.abs(scorer.many(X) - expected).max() < 1e-6  # XGBoost sums in float32
    finally:
        family_model.calibrator = None


@pytest.mark.integration
def test_fast_path_agrees_with_registered_pyfunc_on_every_demo_customer(
    tmp_path: Path,
) -> None:
    """On all 7,043 Telco customers the API path equals mlflow.pyfunc to 1e-6, per family."""
    import mlflow

    from churnops.data.demo import load_demo
    from churnops.scoring import Predictor
    from churnops.stages import train_and_register

    df = load_demo()
    settings = Settings(home=tmp_path / "home", trials=1, cv_folds=2)
    records = _records(df)
    for family in ("lightgbm", "xgboost", "logistic"):
        out = train_and_register(
            df, settings, target="churn", id_column="customer_id", families=[family], trials=1
        )
        version = out["model_version"]
        predictor = Predictor.from_registry(settings, alias=None, version=version)
        pyfunc = mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{version}")
        expected = pyfunc.predict(df.drop(columns=["churn"]))["probability"].to_numpy()
        one = np.array([predictor.score_one(r)[0] for r in records])
        many, _ = predictor.score_many(records)
        assert np.abs(one - expected).max() < 1e-6, family
        assert np.abs(many - expected).max() < 1e-6, family
