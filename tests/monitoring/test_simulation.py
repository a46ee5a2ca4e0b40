"""The demo's simulated weeks: drift grows, late labels arrive, the trigger fires."""

from __future__ import annotations

from pathlib import Path

import pytest

from churnops.config import Settings
from churnops.monitoring.simulation import simulate_weeks
from tests.monitoring.conftest import synth

pytestmark = pytest.mark.integration


def test_simulated_weeks_find_drift_and_act(tmp_path: Path) -> None:
    """Three weeks to full drift: week 1 has no labels, later weeks do; the trigger fires
    and a challenger is trained and judged by the promotion gate."""
    from churnops.stages import train_and_register

    settings = Settings(home=tmp_path / "home", trials=1, cv_folds=2, families=["logistic"])
    train_and_register(synth(2000, seed=1), settings, target="churn", id_column="customer_id")
    out = simulate_weeks(settings, weeks=3, rows_per_week=1200, trials=1, cooldown_weeks=1)
    weeks = out["weeks"]
    assert [w["week"] for w in weeks] == [1, 2, 3]
    assert weeks[0]["realised_f1"] is None  # labels arrive a week late
    assert weeks[1]["realised_f1"] is not None
    assert weeks[-1]["retrain"]
    assert "monthly_charges" in weeks[-1]["drifted_features"]
    actions = [w["action"] for w in weeks if w["action"]]
    assert any(a.startswith("retrained v") and ("promoted" in a or "kept" in a) for a in actions)
    assert out["retrained"] >= 1
