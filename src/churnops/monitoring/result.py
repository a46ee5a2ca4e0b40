"""What one monitoring run found: the result the stage returns, the report draws and the
store keeps (its own module so the report and the store need not import the stage)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from churnops.monitoring.drift import DataDrift
from churnops.monitoring.performance import PERFORMANCE_METRICS, Slice
from churnops.monitoring.plan import MonitoringPlan
from churnops.monitoring.triggers import RetrainDecision


@dataclass
class MonitoringResult:
    """Everything one monitoring run found, and the decision it took."""

    model_name: str
    model_version: str
    reference_name: str
    current_name: str
    reference_rows: int
    current_rows: int
    labelled_rows: int
    drift: DataDrift
    prediction: dict[str, float]
    estimated: dict[str, float | None]
    realised: dict[str, float | None] | None
    baseline: dict[str, float]
    windows: list[Slice]
    segments: list[Slice]
    decision: RetrainDecision
    current_digest: str
    seconds: float
    report_path: str | None = None
    mlflow_run_id: str | None = None
    store_id: int | None = None
    warnings: list[str] = field(default_factory=list)
    plan: MonitoringPlan | None = None
    estimated_band: dict[str, list[float] | None] = field(default_factory=dict)
    estimate_assumption: str = ""
    estimate_check: dict[str, Any] | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def verdict(self) -> str:
        """Return ``retrain``, ``drift`` (something moved, no trigger) or ``ok``."""
        if self.decision.retrain:
            return "retrain"
        return "drift" if self.drift.drifted_features else "ok"

    def to_dict(self) -> dict[str, Any]:
        """Return what ``churnops monitor --json`` prints."""
        return {
            "verdict": self.verdict,
            "retrain": self.decision.retrain,
            "reasons": self.decision.reasons,
            "drift_share": round(self.drift.drift_share, 6),
            "drifted_features": self.drift.drifted_features,
            "features": {
                f.feature: {
                    "kind": f.kind,
                    "psi": round(f.psi, 6),
                    "test": f.test,
                    "statistic": round(f.statistic, 6),
                    "p_value": f.p_value,
                    "js": round(f.js, 6),
                    "severity": f.severity,
                    "drifted": f.drifted,
                }
                for f in self.drift.features
            },
            "data_quality": {
                f.feature: {
                    "missing_reference": round(f.missing_reference, 6),
                    "missing_current": round(f.missing_current, 6),
                    "new_categories": f.new_categories,
                }
                for f in self.drift.features
            },
            "prediction_psi": round(self.prediction["psi"], 6),
            "high_risk_share": round(self.prediction["high_risk_share"], 6),
            "prediction": {k: round(v, 6) for k, v in self.prediction.items()},
            "estimated": _rounded(self.estimated),
            "estimated_band": {
                k: [round(x, 6) for x in v] if v else None for k, v in self.estimated_band.items()
            },
            "estimate_assumption": self.estimate_assumption,
            "estimate_check": self.estimate_check,
            "realised": _rounded(self.realised) if self.realised is not None else None,
            "baseline": _rounded(
                {k: v for k, v in self.baseline.items() if k in PERFORMANCE_METRICS}
            ),
            "derived": self.plan.to_dict() if self.plan else None,
            "windows": [w.to_dict() for w in self.windows],
            "segments": [s.to_dict() for s in self.segments],
            "model": {"name": self.model_name, "version": self.model_version},
            "reference": {"name": self.reference_name, "rows": self.reference_rows},
            "current": {
                "name": self.current_name,
                "rows": self.current_rows,
                "labelled_rows": self.labelled_rows,
                "digest": self.current_digest,
            },
            "report": self.report_path,
            "mlflow_run_id": self.mlflow_run_id,
            "monitoring_run_id": self.store_id,
            "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
        }


def _rounded(metrics: dict[str, float | None]) -> dict[str, float | None]:
    return {k: (round(v, 6) if v is not None else None) for k, v in metrics.items()}
