"""The retrain decision: each trigger alone, with its reason; calm evidence never retrains."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from churnops.config import Settings
from churnops.monitoring.triggers import Evidence, champion_age_days, decide

NOW = datetime(2026, 6, 1, tzinfo=UTC)
CALM = Evidence(
    drift_share=0.05,
    feature_psi={"tenure": 0.02, "contract": 0.01},
    prediction_psi=0.01,
    estimated_f1=0.62,
    champion_created=(NOW - timedelta(days=3)).isoformat(),
    champion_digest="abc",
    source_digest="abc",
    now=NOW,
)


KEY = ["tenure", "contract"]
FLOOR = 0.55


def _with(**changes) -> Evidence:
    return Evidence(**{**CALM.__dict__, **changes})


def _decide(evidence: Evidence, settings: Settings | None = None):
    """Decide with a run's resolved key features and floor (see monitoring.plan)."""
    return decide(evidence, settings or Settings(), key_features=KEY, f1_floor=FLOOR)


def test_calm_evidence_does_not_retrain() -> None:
    """Nothing over any threshold: no retrain and no reasons."""
    decision = _decide(CALM)
    assert decision.retrain is False
    assert decision.reasons == []


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"realised_f1": 0.50}, "realised F1 0.500"),
        ({"estimated_f1": 0.40}, "estimated F1 0.400"),
        ({"drift_share": 0.4}, "40% of features drifted"),
        ({"feature_psi": {"tenure": 0.3}}, "key feature 'tenure'"),
        ({"prediction_psi": 0.3}, "score distribution PSI"),
        ({"champion_created": (NOW - timedelta(days=31)).isoformat()}, "31 days old"),
        ({"source_digest": "def"}, "source data changed"),
        ({"estimate_disagreement": "LABELS CONTRADICT THE ESTIMATE"}, "CONTRADICT"),
    ],
)
def test_each_trigger_fires_alone_with_its_reason(changes: dict, needle: str) -> None:
    """Each kind of evidence alone triggers retraining and names itself in the reason."""
    decision = _decide(_with(**changes))
    assert decision.retrain
    assert len(decision.reasons) == 1
    assert needle in decision.reasons[0]


def test_realised_metrics_overrule_the_estimate() -> None:
    """With labels, a good realised F1 wins over a pessimistic label-free estimate."""
    decision = _decide(_with(realised_f1=0.7, estimated_f1=0.3))
    assert not decision.retrain


def test_the_runs_floor_and_key_features_decide() -> None:
    """A higher F1 floor and other key features change the decision."""
    decision = decide(
        _with(feature_psi={"tenure": 0.9}), Settings(), key_features=["contract"], f1_floor=0.7
    )
    assert decision.reasons == ["estimated F1 0.620 (label-free) is below the floor 0.700"]


def test_without_a_floor_or_key_features_those_triggers_are_silent() -> None:
    """A champion without a holdout F1 has no floor; no key features, no PSI-alone trigger."""
    decision = decide(_with(estimated_f1=0.1, feature_psi={"tenure": 0.9}), Settings())
    assert not decision.retrain


def test_a_psi_on_a_feature_that_is_not_key_does_not_retrain_alone() -> None:
    """Only key features' PSI alerts retrain on their own; others count via the share."""
    assert not _decide(_with(feature_psi={"gender": 0.9})).retrain


def test_champion_age() -> None:
    """Age is measured in days; no timestamp means no calendar trigger."""
    assert champion_age_days((NOW - timedelta(days=2)).isoformat(), NOW) == pytest.approx(2)
    assert champion_age_days(None, NOW) is None
