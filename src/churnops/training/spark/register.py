"""Train on Spark and register: what ``churnops train --engine spark`` runs.

Registration is the local one (:func:`churnops.registry.log_training`): the same MLflow
run, tags, metrics, artifact files and aliases, so ``churnops models`` lists the version
and the API, batch scoring and monitoring load it unchanged.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from churnops.config import Settings
from churnops.data.contract import DataContract
from churnops.progress import ProgressFn
from churnops.training.spark.run import train_spark


def train_and_register_spark(
    data: str | None,
    settings: Settings,
    *,
    target: str,
    id_column: str | None = None,
    contract: DataContract | None = None,
    positive: str | None = None,
    families: list[str] | None = None,
    trials: int | None = None,
    table: str | None = None,
    master: str = "local[2]",
    metrics_out: Path | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Train on Spark, log and register the model; return the run summary.

    The summary has the keys of a local training's (``churnops train --json``), plus
    ``engine`` and ``master``.
    """
    from churnops import registry

    started = time.perf_counter()
    result = train_spark(
        data,
        settings,
        target=target,
        id_column=id_column,
        contract=contract,
        positive=positive,
        families=families,
        trials=trials,
        table=table,
        master=master,
        progress=progress,
    )
    source = data or f"spark-table:{table}"
    version = registry.log_training(result, settings, source=source, progress=progress)
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
        "rows": {
            "train": result.settings["rows_train"],
            "holdout": result.settings["rows_holdout"],
        },
        "family_cv": {k: round(v, 6) for k, v in result.family_scores.items()},
        "cv": {k: round(v, 6) for k, v in result.cv.items()},
        "holdout": {k: round(v, 6) for k, v in result.holdout.items()},
        "top_features": list(result.importance)[:5],
        "warnings": [],
        "metrics_file": str(metrics_out) if metrics_out else None,
        "tracking_uri": settings.resolved_tracking_uri,
        "engine": "spark",
        "master": master,
    }
