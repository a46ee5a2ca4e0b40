"""The monitor stage and ``churnops monitor``: drift, performance, decision, report, store."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from churnops import registry
from churnops.cli import app
from churnops.config import Settings
from churnops.errors import DataValidationError
from churnops.monitoring import monitor
from churnops.store import get_engine
from tests.monitoring.conftest import synth

pytestmark = pytest.mark.integration

JSON_KEYS = {
    "drift_share",
    "drifted_features",
    "features",
    "prediction_psi",
    "high_risk_share",
    "estimated",
    "realised",
    "retrain",
    "reasons",
}


def test_no_drift_no_retrain_and_results_stored(synth_settings: Settings) -> None:
    """A fresh drift-0 batch: no drifted feature, no retrain; all four tables get rows."""
    result = monitor(synth(4000, seed=5, start=date(2026, 3, 2)), synth_settings)
    assert result.drift.drifted_features == []
    assert not result.decision.retrain, result.decision.reasons
    assert result.realised is not None  # the batch carries its labels
    assert result.estimated["f1"] == pytest.approx(result.realised["f1"], abs=0.05)
    with get_engine(synth_settings).connect() as conn:
        run_id = result.store_id
        for table in ("feature_drift", "performance_windows", "segment_metrics"):
            count = conn.execute(
                sa.text(f"select count(*) from {table} where run_id = :r"), {"r": run_id}
            ).scalar()
            assert count > 0, table
        windows = conn.execute(
            sa.text("select distinct window_start from performance_windows where run_id = :r"),
            {"r": run_id},
        ).scalars()
        assert sorted(windows) == ["2026-03-02", "2026-03-09"]


def test_clear_shift_triggers_retrain_with_reasons(synth_settings: Settings) -> None:
    """A strong shift without labels: drifted features, a label-free estimate, retrain."""
    batch = synth(4000, seed=6, drift=1.0).drop(columns=["churn"])
    result = monitor(batch, synth_settings)
    assert result.realised is None
    assert result.estimated["f1"] is not None
    assert result.decision.retrain
    assert "monthly_charges" in result.drift.drifted_features
    plan = result.plan
    assert plan is not None
    assert len(plan.key_features) == 3
    assert plan.key_features_from == "champion's top 3 by mean |SHAP|"
    psi = {f.feature: f.psi for f in result.drift.features}
    alerting = [n for n in plan.key_features if psi[n] >= synth_settings.psi_alert]
    assert alerting  # tenure shortens under drift, and it is one of the model's top three
    for name in alerting:
        assert any(f"key feature {name!r}" in r for r in result.decision.reasons)
    bands = result.to_dict()["estimated_band"]
    for metric in ("f1", "roc_auc"):
        low, high = bands[metric]
        assert low <= result.estimated[metric] <= high
    assert "covariate shift" in result.to_dict()["estimate_assumption"]


def test_labels_that_contradict_the_estimate_are_loud(synth_settings: Settings) -> None:
    """Concept drift: labels that no longer follow the scores disagree with the estimate.

    The estimate only sees the scores, so it stays confident; the labels (here the truth
    turned upside down) fall far outside its band. The output, the JSON, the store and the
    report say so, and it counts as a retrain reason.
    """
    batch = synth(3000, seed=11)
    batch["churn"] = batch["churn"].map({"Yes": "No", "No": "Yes"})
    report = synth_settings.home / "reports" / "contradicted.html"
    result = monitor(batch, synth_settings, report=report)
    check = result.estimate_check
    assert check is not None
    assert check["judged"]
    assert check["disagrees"]
    assert check["metrics"]["roc_auc"]["outside"]
    assert any("CONTRADICT" in r for r in result.decision.reasons)
    assert any("CONTRADICT" in w for w in result.warnings)
    assert result.decision.retrain
    assert "LABELS CONTRADICT" in report.read_text(encoding="utf-8")
    with get_engine(synth_settings).connect() as conn:
        stored = conn.execute(
            sa.text("select estimate_disagrees, estimate from monitoring_runs where id = :r"),
            {"r": result.store_id},
        ).one()
    assert stored[0]
    assert json.loads(stored[1])["check"]["disagrees"]


def test_labels_that_follow_the_scores_agree_with_the_estimate(synth_settings: Settings) -> None:
    """No concept drift: the labels fall inside the band and nothing is flagged."""
    result = monitor(synth(4000, seed=12), synth_settings)
    check = result.estimate_check
    assert check is not None
    assert check["judged"]
    assert not check["disagrees"], check
    assert not any("CONTRADICT" in r for r in result.decision.reasons)


def test_missing_feature_is_a_clear_error(synth_settings: Settings) -> None:
    """A batch without a feature the champion needs names the column."""
    batch = synth(200, seed=7).drop(columns=["tenure"])
    with pytest.raises(DataValidationError, match="tenure"):
        monitor(batch, synth_settings, store=False)


def test_cli_json_with_late_labels_and_report(
    synth_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``churnops monitor --labels --report --json``: the issue's keys, labels joined by id,
    the HTML report written (our summary + Evidently) and logged to MLflow."""
    monkeypatch.setenv("CHURNOPS_HOME", str(synth_settings.home))
    monkeypatch.setenv("CHURNOPS_FAMILIES", '["logistic"]')
    batch = synth(3000, seed=8, drift=0.5)
    batch.drop(columns=["churn"]).to_csv(tmp_path / "batch.csv", index=False)
    labels = batch[["customer_id", "churn"]].sample(frac=0.5, random_state=0)
    labels.to_csv(tmp_path / "labels.csv", index=False)
    report = tmp_path / "out" / "report.html"
    result = CliRunner().invoke(
        app,
        [
            "monitor",
            str(tmp_path / "batch.csv"),
            "--labels",
            str(tmp_path / "labels.csv"),
            "--report",
            str(report),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload) >= JSON_KEYS
    assert payload["current"]["labelled_rows"] == 1500
    assert set(payload["estimated"]) == {"f1", "precision", "recall", "roc_auc"}
    assert {"f1", "precision", "recall", "roc_auc"} <= set(payload["realised"])
    tenure = payload["features"]["tenure"]
    assert {"psi", "statistic", "p_value", "drifted"} <= set(tenure)
    assert isinstance(payload["retrain"], bool)
    assert isinstance(payload["reasons"], list)
    html = report.read_text()
    assert "churnops monitoring report" in html
    assert "evidently" in html.lower()
    assert payload["warnings"] == []
    logged = registry.monitoring_artifacts(synth_settings, payload["mlflow_run_id"])
    assert logged == ["monitoring/report.html"]


def test_cli_reference_option_and_human_output(
    synth_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--reference`` replaces the training snapshot; the plain output states the verdict."""
    monkeypatch.setenv("CHURNOPS_HOME", str(synth_settings.home))
    synth(2000, seed=9).to_parquet(tmp_path / "ref.parquet")
    synth(2000, seed=10).to_parquet(tmp_path / "cur.parquet")
    result = CliRunner().invoke(
        app,
        ["monitor", str(tmp_path / "cur.parquet"), "--reference", str(tmp_path / "ref.parquet")],
    )
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout
    assert "2,000 reference rows" in result.stdout


def test_cli_without_a_champion_exits_3(tmp_path: Path) -> None:
    """No registered model: a clear message and the registry's exit code."""
    synth(100, seed=11).to_csv(tmp_path / "cur.csv", index=False)
    result = CliRunner().invoke(app, ["monitor", str(tmp_path / "cur.csv"), "--json"])
    assert result.exit_code == 3
    assert json.loads(result.stdout)["error"] == "ModelNotFoundError"
