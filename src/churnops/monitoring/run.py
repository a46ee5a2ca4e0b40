"""The ``monitor`` stage: compare a batch with the champion's training data, decide, record.

One plain function the CLI, the pipeline, Dagster and the demo share. It loads the
champion (and, unless given, its training snapshot as the reference), then computes data
drift, prediction drift, realised performance (when labels are known) and the label-free
estimate, per time window and per segment; takes the retrain decision; writes the HTML
report and logs it to MLflow; and stores everything in the operational store.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from churnops.config import Settings
from churnops.data.contract import DataContract, frame_digest
from churnops.data.validation import rows_text
from churnops.errors import DataValidationError
from churnops.monitoring.drift import DriftThresholds, data_drift, prediction_drift
from churnops.monitoring.performance import (
    ESTIMATE_ASSUMPTION,
    estimate_check,
    estimate_error,
    estimated_bands,
    estimated_metrics,
    realised_metrics,
    segment_metrics,
    window_metrics,
)
from churnops.monitoring.plan import plan_monitoring
from churnops.monitoring.result import MonitoringResult
from churnops.monitoring.triggers import Evidence, decide
from churnops.progress import ProgressFn, step
from churnops.registry.models import LoadedModel

if TYPE_CHECKING:
    from churnops.scoring.model import ScoringModel


def thresholds_from(settings: Settings) -> DriftThresholds:
    """Return the drift thresholds configured in ``settings``."""
    return DriftThresholds(
        psi_warn=settings.psi_warn,
        psi_alert=settings.psi_alert,
        p_value=settings.drift_p_value,
        bins=settings.psi_bins,
    )


def monitor(
    current: pd.DataFrame,
    settings: Settings,
    *,
    reference: pd.DataFrame | None = None,
    labels: pd.DataFrame | None = None,
    report: str | Path | None = None,
    current_name: str = "current",
    reference_name: str | None = None,
    source_digest: str | None = None,
    loaded: LoadedModel | None = None,
    store: bool = True,
    now: datetime | None = None,
    progress: ProgressFn | None = None,
) -> MonitoringResult:
    """Monitor ``current`` against the champion and its training data.

    Args:
        current: the batch to check (the customers just scored, or about to be).
        settings: thresholds, trigger settings, segment columns, where to store results.
        reference: the table to compare with; default the champion's training snapshot.
        labels: late labels (id + target columns) joined to ``current`` by the contract's id;
            when None and ``current`` carries the target column, those labels are used.
        report: where to write the HTML report, a path or ``s3://bucket/key`` (then also
            logged to MLflow).
        current_name: how the batch is named in the report and the store (e.g. its path).
        reference_name: how the reference is named (default: the champion's snapshot).
        source_digest: content digest of the training source, for the changed-data trigger.
        loaded: the model to monitor (default: the champion from the registry).
        store: write the results to the operational store.
        now: the clock for the calendar trigger (tests pass a fixed one).
        progress: ``progress(task, done, total)``, called around each step.
    """
    from churnops import registry
    from churnops.data.storage import existing_bucket, is_object_url
    from churnops.registry.overview import run_importance

    started = time.perf_counter()
    if is_object_url(report):  # a bucket that is not there fails now, not after the work
        existing_bucket(report)  # type: ignore[arg-type]
    with step(progress, "monitor: champion and reference"):
        loaded = loaded or registry.load_model(settings, alias=registry.CHAMPION)
        model, version = loaded.model, loaded.version
        contract = model.contract
        if reference is None:
            reference = registry.load_run_frame(
                settings, version.run_id, registry.models.REFERENCE_ARTIFACT
            )
            reference_name = (
                reference_name or f"{version.name} v{version.version} training snapshot"
            )
        _require_features(current, contract, current_name)
        _require_features(reference, contract, reference_name or "reference")
        plan = plan_monitoring(
            settings,
            contract,
            holdout=dict(version.holdout),
            importance=run_importance(settings, version.run_id),
            current=current,
        )

    warnings: list[str] = list(plan.warnings)
    with step(progress, "monitor: data drift"):
        current_digest = frame_digest(current)  # the table as given: evidence is keyed by it
        reference, X_ref = _scorable(reference, model, reference_name or "reference", warnings)
        current, X_cur = _scorable(current, model, current_name, warnings)
        drift = data_drift(reference, current, contract, thresholds_from(settings))
    with step(progress, "monitor: scores and performance"):
        p_ref = model.probabilities(X_ref)
        p_cur = model.probabilities(X_cur)
        prediction = prediction_drift(p_ref, p_cur, model.threshold, thresholds_from(settings))

        y = _labels(current, labels, contract)
        labelled = int(np.sum(~np.isnan(y))) if y is not None else 0
        realised = check = None
        if labelled:
            mask = ~np.isnan(y)
            y_known = y[mask].astype(int)
            realised = realised_metrics(y_known, p_cur[mask], model.threshold)
            check = estimate_check(
                y_known,
                p_cur[mask],
                model.threshold,
                realised,
                slack=_holdout_error(settings, loaded),
            )
            if check["disagrees"]:
                warnings.append(check["message"])
        estimated = estimated_metrics(p_cur, model.threshold)
        bands = estimated_bands(p_cur, model.threshold, estimated)
        dates = current[plan.date_column] if plan.date_column else None
        today = (now or datetime.now(UTC)).date()
        windows = window_metrics(p_cur, model.threshold, y, dates, settings.window, today)
        segments = segment_metrics(current, p_cur, model.threshold, y, plan.segment_columns)

    decision = decide(
        Evidence(
            drift_share=drift.drift_share,
            feature_psi={f.feature: f.psi for f in drift.features},
            prediction_psi=prediction["psi"],
            realised_f1=realised["f1"] if realised else None,
            estimated_f1=estimated["f1"],
            champion_created=version.created,
            champion_digest=version.dataset_digest,
            source_digest=source_digest,
            estimate_disagreement=check["message"] if check and check["worse"] else None,
            now=now,
        ),
        settings,
        key_features=plan.key_features,
        f1_floor=plan.f1_floor,
    )
    result = MonitoringResult(
        model_name=version.name,
        model_version=version.version,
        reference_name=reference_name or "reference",
        current_name=current_name,
        reference_rows=len(reference),
        current_rows=len(current),
        labelled_rows=labelled,
        drift=drift,
        prediction=prediction,
        estimated=estimated,
        realised=realised,
        baseline=dict(version.holdout),
        windows=windows,
        segments=segments,
        decision=decision,
        current_digest=current_digest,
        seconds=0.0,
        warnings=warnings,
        plan=plan,
        estimated_band={k: list(v) if v else None for k, v in bands.items()},
        estimate_assumption=ESTIMATE_ASSUMPTION,
        estimate_check=check,
    )
    if report is not None:
        with step(progress, "monitor: report"):
            _write_report(settings, result, report, reference, current, contract)
    result.seconds = time.perf_counter() - started
    if store:
        from churnops.monitoring.store import save_run

        with step(progress, "monitor: store"):
            result.store_id = save_run(settings, result)
    return result


def _write_report(
    settings: Settings,
    result: MonitoringResult,
    report: str | Path,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    contract: DataContract,
) -> None:
    """Write the HTML report and log it, with the run's metrics, to MLflow.

    A report bound for a bucket is written to a local file first (MLflow logs files) and
    uploaded once it is whole, so a reader never sees half a report.
    """
    from churnops import registry
    from churnops.data.storage import staged
    from churnops.monitoring.report import write_report

    with staged(report) as local:
        write_report(local, result, reference, current, contract, settings)
        result.mlflow_run_id = registry.log_monitoring_report(
            settings,
            local,
            _mlflow_metrics(result),
            tags={
                "churnops.model_version": result.model_version,
                "churnops.verdict": result.verdict,
                "churnops.retrain": str(result.decision.retrain).lower(),
            },
        )
    result.report_path = str(report)


def _scorable(
    frame: pd.DataFrame, model: ScoringModel, name: str, warnings: list[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """Return the rows the contract's rules accept and their encoded matrix.

    Rows the API and batch scoring would refuse are left out here too (with a warning
    naming the first ones), so monitoring judges the model on what it would have scored.
    """
    judged = model.encoder.judge(frame)
    if not judged.problems:
        return frame, model.encoder.matrix(judged)
    bad = sorted(judged.problems)
    first = "; ".join(f"{rows_text([r])}: {judged.problems[r][0].reason}" for r in bad[:3])
    warnings.append(f"{name}: {len(bad)} row(s) break the contract and are left out ({first}).")
    good = np.flatnonzero(~judged.bad)
    return frame.iloc[good].reset_index(drop=True), model.encoder.matrix(judged, rows=good)


def _holdout_error(settings: Settings, loaded: LoadedModel) -> dict[str, float]:
    """Return the label-free estimate's own error on the champion's holdout.

    The holdout is out of sample and labelled, the same footing as new data under the
    estimate's assumption, so what the estimate misses there (imperfect calibration) is
    not evidence of concept drift. None of it for a run logged without a holdout.
    """
    from churnops import registry
    from churnops.errors import RegistryError

    model, contract = loaded.model, loaded.model.contract
    try:
        holdout = registry.load_run_frame(settings, loaded.version.run_id)
    except RegistryError:
        return {}
    judged = model.encoder.judge(holdout)
    good = np.flatnonzero(~judged.bad)
    y = contract.target_series(holdout[contract.target].iloc[good]).to_numpy()
    p = model.probabilities(model.encoder.matrix(judged, rows=good))
    known = ~np.isnan(y)
    if known.sum() < 2:
        return {}
    return estimate_error(y[known].astype(int), p[known], model.threshold)


def _require_features(frame: pd.DataFrame, contract: DataContract, name: str) -> None:
    missing = [c for c in contract.feature_names if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{name} lacks feature column(s) the champion needs: {', '.join(missing)}.",
            {"missing_columns": missing},
        )


def _labels(
    current: pd.DataFrame, labels: pd.DataFrame | None, contract: DataContract
) -> np.ndarray | None:
    """Return 1/0/NaN labels aligned to ``current`` rows, or None when none are known."""
    target = contract.target
    if labels is not None:
        if target not in labels.columns:
            raise DataValidationError(
                f"The labels table has no target column {target!r}.", {"column": target}
            )
        if contract.id is None or contract.id not in labels.columns:
            if len(labels) != len(current):
                raise DataValidationError(
                    "Labels without an id column must have one row per current row."
                )
            return contract.target_series(labels[target].reset_index(drop=True)).to_numpy()
        if contract.id not in current.columns:
            raise DataValidationError(
                f"Cannot join labels: the current table has no id column {contract.id!r}."
            )
        by_id = labels.drop_duplicates(contract.id, keep="last").set_index(contract.id)[target]
        joined = current[contract.id].map(by_id)
        return contract.target_series(joined).to_numpy()
    if target in current.columns and current[target].notna().any():
        return contract.target_series(current[target]).to_numpy()
    return None


def _mlflow_metrics(result: MonitoringResult) -> dict[str, float]:
    metrics: dict[str, float] = {
        "drift_share": result.drift.drift_share,
        "prediction_psi": result.prediction["psi"],
        "high_risk_share": result.prediction["high_risk_share"],
        "retrain": float(result.decision.retrain),
        "current_rows": float(result.current_rows),
    }
    for key, value in result.estimated.items():
        if value is not None:
            metrics[f"estimated_{key}"] = value
    for key, value in (result.realised or {}).items():
        if value is not None:
            metrics[f"realised_{key}"] = value
    for feature in result.drift.features:
        metrics["psi_" + re.sub(r"[^\w\-. /]", "_", feature.feature)] = feature.psi
    return metrics
