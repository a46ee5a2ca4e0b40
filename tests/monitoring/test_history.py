"""The monitoring history the dashboard and the report draw: runs, PSI cells, F1 points."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from churnops.config import Settings
from churnops.monitoring import MonitoringResult, monitor
from churnops.monitoring.performance import (
    estimated_f1_band,
    estimated_metrics,
    expected_confusion,
)
from churnops.monitoring.store import feature_psi, performance_points, run_history
from tests.monitoring.conftest import synth

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def two_runs(synth_home: Path) -> tuple[Settings, MonitoringResult, MonitoringResult]:
    """A labelled drift-0 batch over two weeks, then a shifted batch without labels."""
    settings = Settings(home=synth_home, trials=2, cv_folds=3, families=["logistic"])
    quiet = monitor(synth(3000, seed=21, start=date(2026, 4, 6)), settings)
    shifted = monitor(synth(3000, seed=22, drift=1.0).drop(columns=["churn"]), settings)
    return settings, quiet, shifted


def test_run_history_oldest_first_with_the_decision(
    two_runs: tuple[Settings, MonitoringResult, MonitoringResult],
) -> None:
    settings, quiet, shifted = two_runs
    runs = run_history(settings)
    ids = [r["id"] for r in runs]
    assert ids == sorted(ids)
    assert ids[-2:] == [quiet.store_id, shifted.store_id]
    last = runs[-1]
    assert last["retrain"] is True
    assert last["reasons"] == shifted.decision.reasons
    assert last["drift_share"] == pytest.approx(shifted.drift.drift_share)
    assert last["realised_f1"] is None
    assert last["estimated_f1"] == pytest.approx(shifted.estimated["f1"])
    assert last["at"].tzinfo is not None
    assert set(last) >= {
        "id", "at", "model_version", "current", "drift_share", "prediction_psi",
        "high_risk_share", "estimated_f1", "realised_f1", "baseline_f1", "retrain",
        "reasons", "report_path", "mlflow_run_id",
    }  # fmt: skip
    assert [r["id"] for r in run_history(settings, limit=1)] == [shifted.store_id]


def test_feature_psi_per_run(
    two_runs: tuple[Settings, MonitoringResult, MonitoringResult],
) -> None:
    settings, quiet, shifted = two_runs
    cells = feature_psi(settings, [quiet.store_id, shifted.store_id])
    assert [c["run_id"] for c in cells] == sorted(c["run_id"] for c in cells)
    by_key = {(c["run_id"], c["feature"]): c for c in cells}
    for result in (quiet, shifted):
        for f in result.drift.features:
            cell = by_key[(result.store_id, f.feature)]
            assert cell["psi"] == pytest.approx(f.psi)
            assert cell["drifted"] == f.drifted
    assert feature_psi(settings, []) == []


def test_performance_points_carry_the_estimate_and_its_band(
    two_runs: tuple[Settings, MonitoringResult, MonitoringResult],
) -> None:
    settings, quiet, shifted = two_runs
    first, second = performance_points(settings, [quiet.store_id, shifted.store_id])
    assert first["run_id"] == quiet.store_id
    assert first["estimated_f1"] == pytest.approx(quiet.estimated["f1"])
    assert first["realised_f1"] == pytest.approx(quiet.realised["f1"])
    assert second["realised_f1"] is None
    assert {w["window_start"] for w in first["windows"]} == {"2026-04-06", "2026-04-13"}
    for point in (first, second):
        assert point["lower"] < point["estimated_f1"] < point["upper"]
        assert point["upper"] - point["lower"] < 0.15  # 3,000 customers: a narrow band
    # no concept drift in the quiet batch: its realised F1 is inside the band
    assert first["lower"] <= first["realised_f1"] <= first["upper"]


def test_expected_confusion_recovers_the_counts_from_stored_metrics() -> None:
    """What the store keeps (rows, mean score, precision, recall) gives back TP/FP/FN/TN."""
    p = np.random.default_rng(4).beta(1.5, 4, 5000)
    flag = p >= 0.4
    exact = (p[flag].sum(), (1 - p[flag]).sum(), p[~flag].sum(), (1 - p[~flag]).sum())
    m = estimated_metrics(p, 0.4)
    assert expected_confusion(len(p), p.mean(), m["precision"], m["recall"]) == pytest.approx(exact)
    assert expected_confusion(10, 0.01, 0.0, 0.0) == pytest.approx((0, 0, 0.1, 9.9))
    assert expected_confusion(0, None, None, None) is None
    assert estimated_f1_band([]) is None


def test_the_band_covers_the_realised_f1_when_scores_are_calibrated() -> None:
    """Customers drawn from their own calibrated scores: the realised F1 falls in the band
    at least ~95% of the time (the stored-metrics variance bound makes it conservative)."""
    rng = np.random.default_rng(7)
    p = rng.beta(1.5, 4, 2000)
    flag = p >= 0.4
    m = estimated_metrics(p, 0.4)
    halves = (slice(0, 1000), slice(1000, 2000))  # two windows, pooled
    confusions = []
    for part in halves:
        mp = estimated_metrics(p[part], 0.4)
        confusions.append(expected_confusion(1000, p[part].mean(), mp["precision"], mp["recall"]))
    lower, upper = estimated_f1_band(confusions)
    assert lower < m["f1"] < upper
    y = rng.random((2000, len(p))) < p
    tp = (y & flag).sum(axis=1)
    realised = 2 * tp / (flag.sum() + y.sum(axis=1))
    covered = np.mean((realised >= lower) & (realised <= upper))
    assert 0.94 <= covered <= 0.995


def test_the_report_draws_the_history_with_this_run(
    two_runs: tuple[Settings, MonitoringResult, MonitoringResult], tmp_path: Path
) -> None:
    """The HTML report's summary opens with the history charts (one plotly.js copy)."""
    settings, _, shifted = two_runs
    batch = synth(1500, seed=23, drift=0.5)
    result = monitor(batch, settings, report=tmp_path / "report.html", store=False)
    html = (tmp_path / "report.html").read_text()
    assert result.warnings == []
    assert len(re.findall(r"plotly\.js v\d+\.\d+\.\d+", html)) == 1
    summary = html[: html.index("Drift details by Evidently")]
    for title in ("Drifted features", "Feature PSI by run", "F1 over time"):
        assert title in summary
    assert f"run {shifted.store_id}" in summary
    assert "this run" in summary
    assert html.index("churnops monitoring report") < html.index("Verdict:")
