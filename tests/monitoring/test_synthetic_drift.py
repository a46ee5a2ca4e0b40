"""On synthetic customers: no false alarm without drift, an alarm with a clear shift."""

from __future__ import annotations

import pandas as pd
import pytest

from churnops.config import Settings
from churnops.data.contract import DataContract, infer_contract
from churnops.data.synth import generate_chunks
from churnops.monitoring.drift import data_drift
from churnops.monitoring.run import thresholds_from
from churnops.monitoring.triggers import Evidence, decide


def _sample(rows: int, seed: int, drift: float) -> pd.DataFrame:
    return pd.concat(generate_chunks(rows, seed=seed, drift=drift), ignore_index=True)


@pytest.fixture(scope="module")
def contract() -> DataContract:
    return infer_contract(_sample(3000, 100, 0.0), "churn", "customer_id")


def _decision(reference: pd.DataFrame, current: pd.DataFrame, contract: DataContract):
    settings = Settings()
    drift = data_drift(reference, current, contract, thresholds_from(settings))
    evidence = Evidence(
        drift_share=drift.drift_share, feature_psi={f.feature: f.psi for f in drift.features}
    )
    return drift, decide(evidence, settings, key_features=["tenure", "contract", "monthly_charges"])


@pytest.mark.parametrize("seeds", [(1, 2), (3, 4), (5, 6)])
def test_two_samples_without_drift_raise_no_alarm(contract: DataContract, seeds) -> None:
    """Two independent drift-0 samples: no drifted feature, no retrain."""
    drift, decision = _decision(
        _sample(5000, seeds[0], 0.0), _sample(5000, seeds[1], 0.0), contract
    )
    assert drift.drifted_features == []
    assert not decision.retrain


def test_a_clear_shift_fires_the_alarm(contract: DataContract) -> None:
    """A strong covariate shift drifts prices, tenure and contracts and triggers retraining."""
    drift, decision = _decision(_sample(5000, 1, 0.0), _sample(5000, 2, 1.0), contract)
    assert {"monthly_charges", "tenure", "contract"} <= set(drift.drifted_features)
    assert decision.retrain
    assert any("monthly_charges" in r for r in decision.reasons)
