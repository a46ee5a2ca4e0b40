"""Log monitoring reports to MLflow (the registry owns every MLflow call)."""

from __future__ import annotations

from pathlib import Path

from churnops.config import Settings
from churnops.errors import RegistryError
from churnops.registry.tracking import configure

MONITORING_KIND_TAG = "churnops.kind"


def log_monitoring_report(
    settings: Settings,
    path: Path,
    metrics: dict[str, float],
    tags: dict[str, str] | None = None,
) -> str:
    """Log ``path`` (the HTML report) with ``metrics`` as an MLflow run; return its run id.

    Monitoring runs live in the project's experiment beside the training runs, tagged
    ``churnops.kind=monitoring`` so the UI can filter them.
    """
    import mlflow

    configure(settings)
    try:
        with mlflow.start_run(run_name=f"monitor-{Path(path).stem}") as run:
            mlflow.set_tags({MONITORING_KIND_TAG: "monitoring", **(tags or {})})
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
            mlflow.log_artifact(str(path), "monitoring")
    except Exception as exc:  # the store may refuse; say where
        raise RegistryError(f"Cannot log the monitoring report to MLflow: {exc}") from exc
    return run.info.run_id


def monitoring_artifacts(settings: Settings, run_id: str) -> list[str]:
    """Return the artifact paths logged under ``monitoring/`` for a monitoring run."""
    client = configure(settings)
    return [a.path for a in client.list_artifacts(run_id, "monitoring")]
