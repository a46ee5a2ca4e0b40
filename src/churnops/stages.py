"""Stages that span packages, as plain functions the CLI, Dagster and the API share.

Package-level stages (``validate``, ``train``, ``promote``) stay in their packages; this
module only composes them where a user-facing step needs more than one package, e.g.
"train and register" is training plus the registry.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from churnops.config import Settings
from churnops.data.contract import DataContract
from churnops.training.tuning import ProgressFn


def train_and_register(
    df: pd.DataFrame,
    settings: Settings,
    *,
    target: str,
    id_column: str | None = None,
    contract: DataContract | None = None,
    positive: str | None = None,
    families: list[str] | None = None,
    trials: int | None = None,
    source: str = "",
    metrics_out: Path | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Train on ``df``, log and register the model, and return the run summary.

    The summary is what ``churnops train --json`` prints: run and version ids, the family,
    the threshold, CV and holdout metrics, and the wall-clock seconds of the whole step.
    """
    from churnops import registry
    from churnops.training.run import train

    started = time.perf_counter()
    result = train(
        df,
        settings,
        target=target,
        id_column=id_column,
        contract=contract,
        positive=positive,
        families=families,
        trials=trials,
        progress=progress,
    )
    version = registry.log_training(result, settings, source=source)
    if metrics_out is not None:
        metrics_out.parent.mkdir(parents=True, exist_ok=True)
        metrics_out.write_text(json.dumps(result.holdout, indent=2))
    return {
        "run_id": version.run_id,
        "model_name": version.name,
        "model_version": version.version,
        "aliases": version.aliases,
        "family": result.family,
        "params": result.params,
        "threshold": round(result.model.threshold, 6),
        "calibration": result.calibration.method,
        "seconds": round(time.perf_counter() - started, 2),
        "train_seconds": result.seconds,
        "rows": {"train": len(result.train_frame), "holdout": len(result.holdout_frame)},
        "family_cv": {k: round(v, 6) for k, v in result.family_scores.items()},
        "cv": {k: round(v, 6) for k, v in result.cv.items()},
        "holdout": {k: round(v, 6) for k, v in result.holdout.items()},
        "top_features": list(result.importance)[:5],
        "warnings": [w.message for w in result.validation.warnings],
        "metrics_file": str(metrics_out) if metrics_out else None,
        "tracking_uri": settings.resolved_tracking_uri,
    }
