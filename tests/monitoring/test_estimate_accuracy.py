"""The label-free estimate lands within 0.03 of realised metrics without concept drift."""

from __future__ import annotations

import pytest

from churnops.config import Settings
from churnops.monitoring.performance import estimated_metrics, realised_metrics
from churnops.scoring.model import ScoringModel
from tests.monitoring.conftest import synth

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> ScoringModel:
    from churnops.training.run import train

    settings = Settings(
        home=tmp_path_factory.mktemp("est"), trials=8, cv_folds=3, families=["logistic"]
    )
    return train(synth(8000, seed=1), settings, target="churn", id_column="customer_id").model


@pytest.mark.parametrize("drift", [0.0, 0.3])
def test_estimate_within_003_of_realised(model: ScoringModel, drift: float) -> None:
    """On fresh labelled customers (covariate shift only), every estimate is within 0.03."""
    batch = synth(30_000, seed=21, drift=drift)
    p = model.probabilities(model.encoder.transform(batch))
    y = model.contract.target_series(batch["churn"]).to_numpy(dtype=int)
    estimated = estimated_metrics(p, model.threshold)
    realised = realised_metrics(y, p, model.threshold)
    for key in ("f1", "precision", "recall", "roc_auc"):
        assert estimated[key] == pytest.approx(realised[key], abs=0.03), key
