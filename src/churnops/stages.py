"""Stages that span packages, as plain functions the CLI, Dagster and the API share.

Package-level stages (``validate``, ``train``, ``promote``) stay in their packages; this
module only composes them where a user-facing step needs more than one package, e.g.
"train and register" is training plus the registry.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnops.config import Settings

if TYPE_CHECKING:  # the read-only stages below must not import pandas or training code
    import pandas as pd

    from churnops.data.contract import DataContract
    from churnops.progress import ProgressFn
    from churnops.training.run import TrainResult

EVALUATED = ("roc_auc", "pr_auc", "f1", "precision", "recall")
"""What :func:`evaluate_version` reports: the ranking metrics and what the threshold decides."""
_ROWS_NAMED = 5


def train_and_register(
    df: pd.DataFrame | str | None,
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
    engine: str = "local",
    table: str | None = None,
    master: str | None = None,
) -> dict[str, Any]:
    """Train, log and register the model, and return the run summary.

    ``engine="local"`` trains on the frame ``df``; ``engine="spark"`` on what Spark reads:
    ``df`` is then a Parquet file or folder, a CSV file or an ``s3://`` URL (or None with a
    Spark ``table``), on ``master`` (default: ``settings.spark_master``). Both register the
    same way, so the summary is what ``churnops train --json`` prints either way — run and
    version ids, the family, the threshold, CV and holdout metrics, the wall-clock seconds
    of the whole step — plus ``engine`` and ``master`` for Spark.
    """
    check_artifact_store(settings)
    started = time.perf_counter()
    how: dict[str, Any] = {
        "target": target,
        "id_column": id_column,
        "contract": contract,
        "positive": positive,
        "families": families,
        "trials": trials,
        "progress": progress,
    }
    if engine == "spark":
        from churnops.training.spark import train_spark

        data = None if df is None else str(df)
        master = master or settings.spark_master
        result = train_spark(data, settings, table=table, master=master, **how)
        source = source or data or f"spark-table:{table}"
    else:
        import pandas

        from churnops.training.run import train

        if not isinstance(df, pandas.DataFrame):
            raise TypeError("the local engine trains on a pandas DataFrame")
        result = train(df, settings, **how)
    summary = registered_summary(
        result, settings, source=source, started=started, metrics_out=metrics_out, progress=progress
    )
    return summary | ({"engine": "spark", "master": master} if engine == "spark" else {})


def check_artifact_store(settings: Settings) -> None:
    """Fail before minutes of training, not after, when an s3:// artifact bucket is missing."""
    from churnops.data.storage import existing_bucket, is_object_url

    if is_object_url(settings.artifact_location):
        existing_bucket(str(settings.artifact_location))


def registered_summary(
    result: TrainResult,
    settings: Settings,
    *,
    source: str,
    started: float,
    metrics_out: Path | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Log and register a training (either engine's); return what ``train --json`` prints.

    Row counts come from the result's settings when the engine logged samples of its
    frames (Spark), else from the frames themselves.
    """
    from churnops import registry

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
            "train": result.settings.get("rows_train", len(result.train_frame)),
            "holdout": result.settings.get("rows_holdout", len(result.holdout_frame)),
        },
        "family_cv": {k: round(v, 6) for k, v in result.family_scores.items()},
        "cv": {k: round(v, 6) for k, v in result.cv.items()},
        "holdout": {k: round(v, 6) for k, v in result.holdout.items()},
        "top_features": list(result.importance)[:5],
        "warnings": [w.message for w in result.validation.warnings],
        "metrics_file": str(metrics_out) if metrics_out else None,
        "tracking_uri": settings.resolved_tracking_uri,
    }


def customer_profile(settings: Settings, customer_id: str) -> dict[str, Any]:
    """One customer across scoring dates, with the latest score taken apart.

    ``history`` comes from the store (newest first). When the latest run's source file
    still holds the customer, ``record`` is their row and ``explanation`` every feature's
    contribution under the model version that scored them (:func:`explain_record`);
    otherwise both are None and ``note`` says why (the stored top reasons remain).
    """
    from churnops.batch import get_run
    from churnops.batch.risk import customer_history
    from churnops.data.sources import find_record
    from churnops.errors import ChurnopsError, NotFoundError
    from churnops.scoring import Predictor
    from churnops.scoring.explain import explain_record

    history = customer_history(settings, customer_id)
    if not history:
        raise NotFoundError(
            f"Customer {customer_id!r} has no scores: check the id, or run `churnops score`."
        )
    latest = history[0]
    source = get_run(settings, latest["run_id"])["source"]
    profile: dict[str, Any] = {
        "customer_id": customer_id,
        "history": history,
        "source": source,
        "model_version": latest["model_version"],
        "record": None,
        "explanation": None,
        "note": None,
    }
    try:
        predictor = Predictor.from_registry(settings, alias=None, version=latest["model_version"])
    except ChurnopsError as exc:
        profile["note"] = f"model v{latest['model_version']} cannot be loaded: {exc}"
        return profile
    id_column = predictor.model.contract.id
    record = find_record(source, id_column, customer_id) if id_column else None
    if record is None:
        profile["note"] = f"the customer's row is no longer in {source}"
        return profile
    profile["record"] = record
    try:
        profile["explanation"] = explain_record(predictor, record)
    except ChurnopsError as exc:  # the row changed since it was scored and breaks the contract
        profile["note"] = f"the customer's current row cannot be scored: {exc}"
    return profile


def typical_customer(settings: Settings, version: str) -> dict[str, dict[str, Any]]:
    """Return the typical non-churner's feature values in a version's training data."""
    from churnops import registry
    from churnops.data.profile import typical_values

    loaded = registry.load_model(settings, version=version)
    frame = registry.load_run_frame(
        settings, loaded.version.run_id, registry.models.REFERENCE_ARTIFACT
    )
    return typical_values(frame, loaded.model.contract)


def evaluate_version(
    settings: Settings, version: str | None = None, frame: pd.DataFrame | None = None
) -> dict[str, Any]:
    """Return a version's metrics (default the champion) on ``frame`` or its own holdout.

    A table that breaks the version's contract, or lacks usable labels, is refused with
    the rows named: metrics on silently dropped rows would not be the metrics asked for.
    """
    import numpy as np

    from churnops import registry
    from churnops.errors import DataValidationError
    from churnops.training.evaluate import classification_metrics

    loaded = registry.load_model(settings, version=version)
    model = loaded.model
    if frame is None:
        frame = registry.load_run_frame(settings, loaded.version.run_id)
    target = model.contract.target
    if target not in frame.columns:
        raise DataValidationError(
            f"The table has no {target!r} column: evaluation needs the churn label.",
            {"column": target},
        )
    y = model.contract.target_series(frame[target])
    unlabelled = np.flatnonzero(y.isna().to_numpy())
    if len(unlabelled):
        rows = [int(r) + 1 for r in unlabelled[:_ROWS_NAMED]]
        raise DataValidationError(
            f"{len(unlabelled)} row(s) have no known {target!r} label (expected one of "
            f"{', '.join(map(str, model.contract.labels))}): rows {rows}.",
            {"column": target, "rows": rows},
        )
    if y.nunique() < 2:
        raise DataValidationError(
            f"Every row has the same {target!r} label: ROC-AUC needs churners and stayers."
        )
    p = model.probabilities(model.encoder.transform(frame))
    scores = classification_metrics(y.to_numpy(dtype=int), np.asarray(p), model.threshold)
    return {
        **{name: round(scores[name], 6) for name in EVALUATED},
        "threshold": round(model.threshold, 6),
        "version": int(loaded.version.version),
        "rows": len(frame),
    }
