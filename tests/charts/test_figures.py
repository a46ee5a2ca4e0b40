"""Every figure builds from small data and from no data, and its traces carry the numbers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import plotly.graph_objects as go
import pytest

from churnops import charts
from churnops.campaign import ProfitModel, plan_campaign

AT = [datetime(2026, 3, 2, tzinfo=UTC) + timedelta(days=7 * i) for i in range(3)]
RUNS = [
    {"id": 1, "at": AT[0], "model_version": "1", "drift_share": 0.0, "prediction_psi": 0.01,
     "high_risk_share": 0.2, "retrain": False},
    {"id": 2, "at": AT[1], "model_version": "1", "drift_share": 0.2, "prediction_psi": 0.08,
     "high_risk_share": 0.25, "retrain": False},
    {"id": 3, "at": AT[2], "model_version": "1", "drift_share": 0.5, "prediction_psi": 0.3,
     "high_risk_share": 0.4, "retrain": True},
]  # fmt: skip
CELLS = [
    {"run_id": 1, "feature": "tenure", "psi": 0.01, "drifted": False},
    {"run_id": 1, "feature": "plan", "psi": 0.02, "drifted": False},
    {"run_id": 2, "feature": "tenure", "psi": 0.4, "drifted": True},
    {"run_id": 2, "feature": "plan", "psi": 0.05, "drifted": False},
]
POINTS = [
    {"run_id": 1, "at": AT[0], "estimated_f1": 0.6, "realised_f1": 0.62,
     "lower": 0.55, "upper": 0.65, "baseline_f1": 0.63},
    {"run_id": 2, "at": AT[1], "estimated_f1": 0.5, "realised_f1": None,
     "lower": None, "upper": None, "baseline_f1": 0.63},
]  # fmt: skip
REASONS = [
    {"feature": "contract", "contribution": 0.9, "value": "month-to-month"},
    {"feature": "tenure", "contribution": -0.4, "value": 30.0},
    {"feature": "support_calls", "contribution": 0.2},
]
ROWS = [
    {"customer_id": "a", "score": 0.9, "reasons": REASONS},
    {"customer_id": "b", "score": 0.8, "reasons": [{"feature": "tenure", "contribution": 0.5}]},
    {"customer_id": "c", "score": 0.7, "reasons": []},
]
HISTORY = [
    {"scoring_date": "2026-03-09", "score": 0.7, "threshold": 0.5},
    {"scoring_date": "2026-03-02", "score": 0.4, "threshold": 0.45},
]
PLAN = plan_campaign(np.array([0.9, 0.6, 0.3, 0.1]), None, ProfitModel(10.0, 0.5, 100.0))
EMPTY_PLAN = plan_campaign(np.array([]), None, ProfitModel(10.0, 0.5, 100.0))

BUILDERS: dict[str, tuple[Callable[[], go.Figure], Callable[[], go.Figure]]] = {
    "score_distribution": (
        lambda: charts.score_distribution(np.array([0.1, 0.2, 0.55, 0.9]), 0.5),
        lambda: charts.score_distribution([], None),
    ),
    "top_reason_counts": (
        lambda: charts.top_reason_counts(ROWS),
        lambda: charts.top_reason_counts([]),
    ),
    "reason_waterfall": (
        lambda: charts.reason_waterfall(REASONS, base_margin=-1.2, score=0.83),
        lambda: charts.reason_waterfall([]),
    ),
    "score_history": (lambda: charts.score_history(HISTORY), lambda: charts.score_history([])),
    "profit_curve": (lambda: charts.profit_curve(PLAN), lambda: charts.profit_curve(EMPTY_PLAN)),
    "calibration": (
        lambda: charts.calibration([0.1, 0.5, 0.9], [0.12, 0.45, 0.85], [50, 30, 20]),
        lambda: charts.calibration([], []),
    ),
    "feature_importance": (
        lambda: charts.feature_importance({"tenure": 0.5, "contract": 0.8, "plan": 0.1}, top=2),
        lambda: charts.feature_importance({}),
    ),
    "drift_share_over_time": (
        lambda: charts.drift_share_over_time(RUNS, alert=0.3),
        lambda: charts.drift_share_over_time([]),
    ),
    "psi_heatmap": (lambda: charts.psi_heatmap(CELLS), lambda: charts.psi_heatmap([])),
    "prediction_drift_over_time": (
        lambda: charts.prediction_drift_over_time(RUNS, alert=0.25),
        lambda: charts.prediction_drift_over_time([]),
    ),
    "performance_over_time": (
        lambda: charts.performance_over_time(POINTS, 0.55),
        lambda: charts.performance_over_time([], None),
    ),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_every_figure_builds_with_data_and_without(name: str) -> None:
    """Data draws traces; no data draws a 'no data' note on hidden axes, never an error."""
    full, empty = (build() for build in BUILDERS[name])
    assert isinstance(full, go.Figure)
    assert full.data
    assert full.layout.template.layout.colorway  # our template, not plotly's default
    assert isinstance(empty, go.Figure)
    assert not empty.data
    assert empty.layout.annotations
    assert full.to_json()  # serialisable, as the dashboard and reports need
    assert empty.to_json()


def test_every_public_chart_is_covered() -> None:
    assert set(BUILDERS) == set(charts.__all__)


def test_score_distribution_splits_exactly_at_the_threshold() -> None:
    scores = np.array([0.1, 0.2, 0.49, 0.5, 0.51, 0.9, 0.93])
    fig = charts.score_distribution(scores, 0.5)
    below, above = fig.data
    assert sum(below.y) == 3
    assert sum(above.y) == 4
    assert fig.layout.shapes[0].x0 == 0.5


def test_top_reason_counts_by_direction() -> None:
    fig = charts.top_reason_counts(ROWS)
    raises, lowers = fig.data
    counts = {y: (r, lo) for y, r, lo in zip(raises.y, raises.x, lowers.x, strict=True)}
    assert counts == {"tenure": (1, 1), "contract": (1, 0), "support_calls": (1, 0)}
    assert raises.y[-1] == "tenure"  # the most frequent on top


def test_reason_waterfall_labels_values_and_starts_at_the_base() -> None:
    trace = charts.reason_waterfall(REASONS, base_margin=-1.2, score=0.83).data[0]
    assert list(trace.y) == [
        "base (average customer)", "contract = month-to-month", "tenure = 30",
        "support_calls",
    ]  # fmt: skip
    assert list(trace.x) == [-1.2, 0.9, -0.4, 0.2]
    assert list(trace.measure) == ["absolute", "relative", "relative", "relative"]


def test_score_history_is_in_date_order_with_the_threshold() -> None:
    score, threshold = charts.score_history(HISTORY).data
    assert list(score.x) == ["2026-03-02", "2026-03-09"]
    assert list(score.y) == [0.4, 0.7]
    assert list(threshold.y) == [0.45, 0.5]


def test_profit_curve_marks_the_plan_and_the_limit() -> None:
    plan = plan_campaign(np.array([0.9, 0.6, 0.3, 0.1]), None, ProfitModel(10.0, 0.5, 100.0),
                         max_calls=2)  # fmt: skip
    curve, chosen = charts.profit_curve(plan).data
    assert list(curve.x) == [0, 1, 2, 3, 4]
    assert list(curve.y) == pytest.approx([0, 35, 55, 60, 55])
    assert (chosen.x[0], chosen.y[0]) == (2, pytest.approx(55.0))
    assert any(s.x0 == 2 for s in charts.profit_curve(plan).layout.shapes)


def test_calibration_and_importance_carry_their_numbers() -> None:
    fig = charts.calibration([0.1, 0.5, 0.9], [0.12, 0.45, 0.85], [50, 30, 20])
    model = next(t for t in fig.data if t.name == "model")
    assert list(model.y) == [0.12, 0.45, 0.85]
    assert list(next(t for t in fig.data if t.type == "bar").y) == [50, 30, 20]
    bars = charts.feature_importance({"tenure": 0.5, "contract": 0.8, "plan": 0.1}, top=2).data[0]
    assert list(bars.y) == ["tenure", "contract"]
    assert list(bars.x) == [0.5, 0.8]


def test_psi_heatmap_is_feature_by_run() -> None:
    trace = charts.psi_heatmap(CELLS, labels={1: "2026-03-02"}).data[0]
    assert list(trace.y) == ["tenure", "plan"]  # largest PSI first
    assert list(trace.x) == ["2026-03-02", "run 2"]
    assert [list(r) for r in trace.z] == [[0.01, 0.4], [0.02, 0.05]]
    assert trace.text[0][1] == "0.40*"


def test_monitoring_history_traces() -> None:
    drift = charts.drift_share_over_time(RUNS).data[0]
    assert list(drift.y) == [0.0, 0.2, 0.5]
    psi, share = charts.prediction_drift_over_time(RUNS).data
    assert list(psi.y) == [0.01, 0.08, 0.3]
    assert list(share.y) == [0.2, 0.25, 0.4]
    fig = charts.performance_over_time(POINTS, 0.55)
    band = next(t for t in fig.data if t.fill == "toself")
    assert list(band.y) == [0.65, 0.55]  # only the point with a band
    estimated = next(t for t in fig.data if t.name.startswith("estimated"))
    realised = next(t for t in fig.data if t.name == "realised")
    assert list(estimated.y) == [0.6, 0.5]
    assert list(realised.y) == [0.62, None]
    assert fig.layout.shapes[0].y0 == 0.55
