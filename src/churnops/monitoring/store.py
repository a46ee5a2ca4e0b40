"""Write monitoring results to the operational store and read them back.

The reads are what the dashboard's Monitoring page and the report's history charts
draw: plain dicts, oldest run first, so no page needs SQL.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from churnops.config import Settings
from churnops.monitoring.performance import (
    PERFORMANCE_METRICS,
    estimated_f1_band,
    expected_confusion,
)
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
            f1_floor=result.plan.f1_floor if result.plan else None,
            derived=json.dumps(result.plan.to_dict()) if result.plan else None,
            warnings=json.dumps(result.warnings),
            estimate=json.dumps(
                {
                    "band": result.estimated_band,
                    "assumption": result.estimate_assumption,
                    "check": result.estimate_check,
                }
            ),
            estimate_disagrees=bool(result.estimate_check and result.estimate_check["disagrees"]),
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


def latest_run(settings: Settings, digest: str | None = None) -> dict[str, Any] | None:
    """Return the newest monitoring run as a dict (None when there is none).

    ``digest`` keeps only runs over that content: evidence about one table is not
    evidence about another (a retrain trigger asks about the table it would train on).
    """
    query = sa.select(MonitoringRun).order_by(MonitoringRun.id.desc()).limit(1)
    if digest is not None:
        query = query.where(MonitoringRun.current_digest == digest)
    with session_scope(settings) as session:
        run = session.scalars(query).first()
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


def run_history(settings: Settings, limit: int = 100) -> list[dict[str, Any]]:
    """Return the project model's latest ``limit`` monitoring runs, oldest first."""
    with session_scope(settings) as session:
        runs = session.scalars(
            sa.select(MonitoringRun)
            .where(MonitoringRun.model_name == settings.model_name)
            .order_by(MonitoringRun.id.desc())
            .limit(limit)
        ).all()
        return [
            {
                "id": run.id,
                "at": _utc(run.at),
                "model_version": run.model_version,
                "current": run.current,
                "drift_share": run.drift_share,
                "drifted_features": json.loads(run.drifted_features),
                "prediction_psi": run.prediction_psi,
                "high_risk_share": run.high_risk_share,
                "estimated_f1": run.estimated_f1,
                "realised_f1": run.realised_f1,
                "baseline_f1": run.baseline_f1,
                "retrain": run.retrain,
                "reasons": json.loads(run.reasons),
                "report_path": run.report_path,
                "mlflow_run_id": run.mlflow_run_id,
                "f1_floor": run.f1_floor,
                "estimate_disagrees": bool(run.estimate_disagrees),
                "warnings": json.loads(run.warnings or "[]"),
            }
            for run in reversed(runs)
        ]


def feature_psi(settings: Settings, run_ids: list[int]) -> list[dict[str, Any]]:
    """Return each feature's PSI in the given runs (oldest run first, largest PSI first)."""
    if not run_ids:
        return []
    with session_scope(settings) as session:
        rows = session.execute(
            sa.select(
                FeatureDriftRow.run_id,
                FeatureDriftRow.feature,
                FeatureDriftRow.psi,
                FeatureDriftRow.drifted,
            )
            .where(FeatureDriftRow.run_id.in_(run_ids))
            .order_by(FeatureDriftRow.run_id, FeatureDriftRow.psi.desc())
        ).all()
    return [{"run_id": r, "feature": f, "psi": psi, "drifted": d} for r, f, psi, d in rows]


def performance_points(settings: Settings, run_ids: list[int]) -> list[dict[str, Any]]:
    """Return each run's F1 (estimated, realised, champion holdout) with the estimate's band.

    ``lower``/``upper`` bound the realised F1 the estimate expects (see
    :func:`~churnops.monitoring.performance.estimated_f1_band`), from the run's estimated
    windows; ``windows`` are the run's per-window metrics, as stored.
    """
    if not run_ids:
        return []
    with session_scope(settings) as session:
        runs = session.scalars(
            sa.select(MonitoringRun).where(MonitoringRun.id.in_(run_ids)).order_by(MonitoringRun.id)
        ).all()
        windows = session.scalars(
            sa.select(PerformanceWindow)
            .where(PerformanceWindow.run_id.in_(run_ids))
            .order_by(PerformanceWindow.run_id, PerformanceWindow.id)
        ).all()
        by_run: dict[int, list[dict[str, Any]]] = {}
        for w in windows:
            by_run.setdefault(w.run_id, []).append(
                {
                    "kind": w.kind,
                    "window_start": w.window_start,
                    "window_end": w.window_end,
                    "rows": w.rows,
                    "positive_rate": w.positive_rate,
                    **{k: getattr(w, k) for k in PERFORMANCE_METRICS},
                }
            )
        return [
            {
                "run_id": run.id,
                "at": _utc(run.at),
                "model_version": run.model_version,
                "estimated_f1": run.estimated_f1,
                "realised_f1": run.realised_f1,
                "baseline_f1": run.baseline_f1,
                "f1_floor": run.f1_floor,
                **_band(run, by_run.get(run.id, [])),
                "windows": by_run.get(run.id, []),
            }
            for run in runs
        ]


def _band(run: MonitoringRun, windows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Return the run's stored F1 band; runs stored before bands were kept derive one."""
    stored = json.loads(run.estimate or "{}").get("band", {}).get("f1")
    if stored:
        return {"lower": stored[0], "upper": stored[1]}
    return band(windows)


def band(windows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Return ``lower``/``upper`` of the estimated F1 from a run's estimated windows.

    For runs stored before bands were (0009): the delta-method band of
    :func:`~churnops.monitoring.performance.estimated_f1_band` from the stored windows.
    """
    confusions = [
        expected_confusion(w["rows"], w["positive_rate"], w["precision"], w["recall"])
        for w in windows
        if w["kind"] == "estimated"
    ]
    found = estimated_f1_band([c for c in confusions if c is not None])
    lower, upper = found or (None, None)
    return {"lower": lower, "upper": upper}


def _utc(at: datetime) -> datetime:
    """SQLite returns timestamps without their zone; they were written in UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _metrics(metrics: dict[str, float | None]) -> dict[str, float | None]:
    keys = ("roc_auc", "pr_auc", "f1", "precision", "recall")
    return {k: metrics.get(k) for k in keys}
