"""``churnops pipeline run``: the closed loop once, idempotent, a stored row per step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from churnops.batch import high_risk
from churnops.cli import app
from churnops.config import Settings
from churnops.data.synth import write_synthetic
from churnops.errors import ConfigError
from churnops.orchestration import list_steps, run_pipeline

pytestmark = pytest.mark.integration


def _statuses(summary: dict) -> dict[str, str]:
    return {s["step"]: s["status"] for s in summary["steps"]}


def test_first_run_trains_then_reruns_change_nothing_then_new_data_retrains(
    tmp_path: Path,
) -> None:
    """Run 1 trains the first champion, scores and monitors; run 2 on the same data skips
    training, scoring and monitoring; run 3 on changed data retrains and runs the gate."""
    settings = Settings(home=tmp_path / "home", trials=1, cv_folds=2, families=["logistic"])
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    write_synthetic(first, 1500, seed=3)
    write_synthetic(second, 1500, seed=4, drift=0.6)

    run1 = run_pipeline(settings, source=first)
    assert _statuses(run1) == {
        "digest": "ok",
        "validate": "ok",
        "trigger": "ok",
        "train": "ok",
        "promote": "skipped",
        "score": "ok",
        "monitor": "ok",
        "report": "ok",
    }
    assert run1["champion_version"] == "1"
    score = next(s for s in run1["steps"] if s["step"] == "score")["detail"]
    assert (score["rows_in"], score["rows_scored"], score["status"]) == (1500, 1500, "succeeded")
    stored = high_risk(settings, top=5000)
    assert stored["high_risk_total"] == score["high_risk"]

    run2 = run_pipeline(settings, source=first)
    assert _statuses(run2)["train"] == "skipped"
    assert _statuses(run2)["score"] == "skipped"
    assert _statuses(run2)["monitor"] == "skipped"
    assert run2["champion_version"] == "1"

    run3 = run_pipeline(settings, source=second)
    trigger = next(s for s in run3["steps"] if s["step"] == "trigger")["detail"]
    assert any("source data changed" in r for r in trigger["reasons"])
    assert _statuses(run3)["train"] == "ok"
    assert _statuses(run3)["promote"] == "ok"
    assert _statuses(run3)["monitor"] == "ok"

    stored = list_steps(settings)
    assert len(stored) == len(run1["steps"]) + len(run2["steps"]) + len(run3["steps"])
    assert {s["pipeline_run"] for s in stored} == {
        run1["pipeline_run"],
        run2["pipeline_run"],
        run3["pipeline_run"],
    }
    assert Path(run3["steps"][-1]["detail"]["path"]).exists()


def test_invalid_source_is_recorded_as_a_failed_step(tmp_path: Path) -> None:
    """A source that breaks the champion's contract stops the loop with a failed row."""
    from churnops.errors import DataValidationError

    settings = Settings(home=tmp_path / "home", trials=1, cv_folds=2, families=["logistic"])
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    write_synthetic(good, 800, seed=5)
    run_pipeline(settings, source=good)
    import pandas as pd

    frame = pd.read_csv(good)
    frame.loc[:10, "contract"] = None
    frame = frame.drop(columns=["tenure"])
    frame.to_csv(bad, index=False)
    with pytest.raises(DataValidationError):
        run_pipeline(settings, source=bad)
    last = list_steps(settings)[-1]
    assert (last["step"], last["status"]) == ("validate", "failed")


def test_no_source_is_a_config_error(tmp_path: Path) -> None:
    """Without --source or CHURNOPS_PIPELINE_SOURCE the loop says what to set."""
    with pytest.raises(ConfigError, match="CHURNOPS_PIPELINE_SOURCE"):
        run_pipeline(Settings(home=tmp_path / "home"))


def test_cli_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``churnops pipeline run --json`` prints one object with every step."""
    source = tmp_path / "s.csv"
    write_synthetic(source, 800, seed=6)
    monkeypatch.setenv("CHURNOPS_PIPELINE_SOURCE", str(source))
    monkeypatch.setenv("CHURNOPS_TRIALS", "1")
    monkeypatch.setenv("CHURNOPS_CV_FOLDS", "2")
    monkeypatch.setenv("CHURNOPS_FAMILIES", '["logistic"]')
    result = CliRunner().invoke(app, ["pipeline", "run", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [s["step"] for s in payload["steps"]] == [
        "digest",
        "validate",
        "trigger",
        "train",
        "promote",
        "score",
        "monitor",
        "report",
    ]
