"""Write monitoring results to the operational store and read the latest back."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from churnops.config import Settings
from churnops.store import (
    FeatureDriftRow,
    MonitoringRun,
    PerformanceWindow,
    SegmentMetric,
    session_scope,
)

if TYPE_CHECKING:
    from churnops.monitoring.result import MonitoringResult


def save_run(settings: Settings, result: MonitoringResult) -> int:
    """Store one monitoring run with its features, windows and segments; return its id."""
    with session_scope(settings) as session:
        run = MonitoringRun(
            at=result.at,
            model_name=result.model_name,
            model_version=result.model_version,
            reference=result.reference_name,
            current=result.current_name,
            reference_rows=result.reference_rows,
            current_rows=result.current_rows,
            current_digest=result.current_digest,
            drift_share=result.drift.drift_share,
            drifted_features=json.dumps(result.drift.drifted_features),
            prediction_psi=result.prediction["psi"],
            high_risk_share=result.prediction["high_risk_share"],
            estimated_f1=result.estimated.get("f1"),
            realised_f1=(result.realised or {}).get("f1"),
            baseline_f1=result.baseline.get("f1"),
            retrain=result.decision.retrain,
            reasons=json.dumps(result.decision.reasons),
            report_path=result.report_path,
            mlflow_run_id=result.mlflow_run_id,
            seconds=result.seconds,
        )
        session.add(run)
        session.flush()
        session.add_all(
            FeatureDriftRow(
                run_id=run.id,
                feature=f.feature,
                kind=f.kind,
                test=f.test,
                statistic=f.statistic,
                p_value=f.p_value,
                psi=f.psi,
                js=f.js,
                drifted=f.drifted,
                severity=f.severity,
                missing_reference=f.missing_reference,
                missing_current=f.missing_current,
                new_categories=json.dumps(f.new_categories),
            )
            for f in result.drift.features
        )
        session.add_all(
            PerformanceWindow(
                run_id=run.id,
                kind=w.kind,
                window_start=w.window_start,
                window_end=w.window_end,
                rows=w.rows,
                positive_rate=w.positive_rate,
                **_metrics(w.metrics),
            )
            for w in result.windows
        )
        session.add_all(
            SegmentMetric(
                run_id=run.id,
                kind=s.kind,
                column=s.column or "",
                level=s.level or "",
                rows=s.rows,
                positive_rate=s.positive_rate,
                **_metrics(s.metrics),
            )
            for s in result.segments
        )
        return run.id


def latest_run(settings: Settings) -> dict[str, Any] | None:
    """Return the newest monitoring run as a dict (None when there is none)."""
    with session_scope(settings) as session:
        run = session.scalars(
            sa.select(MonitoringRun).order_by(MonitoringRun.id.desc()).limit(1)
        ).first()
        if run is None:
            return None
        return {
            "id": run.id,
            "at": run.at,
            "model_version": run.model_version,
            "current": run.current,
            "current_digest": run.current_digest,
            "drift_share": run.drift_share,
            "retrain": run.retrain,
            "reasons": json.loads(run.reasons),
            "report_path": run.report_path,
        }


def _metrics(metrics: dict[str, float | None]) -> dict[str, float | None]:
    keys = ("roc_auc", "pr_auc", "f1", "precision", "recall")
    return {k: metrics.get(k) for k in keys}
