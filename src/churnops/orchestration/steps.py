"""The steps of the closed loop as plain functions; the pipeline and Dagster both call them.

Each step takes settings and data and returns a JSON-safe summary, so a step's result can
be stored in ``pipeline_steps``, printed by ``--json`` and shown in the Dagster UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from churnops.config import Settings
from churnops.data.contract import DataContract, frame_digest
from churnops.errors import ConfigError, DataValidationError, ModelNotFoundError


@dataclass
class Source:
    """The customer table the loop runs on, read once, with its content digest."""

    path: Path
    frame: pd.DataFrame
    digest: str


def read_source(settings: Settings, source: Path | str | None = None) -> Source:
    """Read the pipeline's source table (``source`` or ``settings.pipeline_source``)."""
    from churnops.data.sources import read_table

    path = source or settings.pipeline_source
    if path is None:
        raise ConfigError(
            "No source table: pass --source FILE or set CHURNOPS_PIPELINE_SOURCE.",
            {"setting": "pipeline_source"},
        )
    frame = read_table(path)
    return Source(Path(path), frame, frame_digest(frame))


def champion_or_none(settings: Settings) -> Any:
    """Return the champion's LoadedModel, or None when nothing is registered yet."""
    from churnops import registry

    try:
        return registry.load_model(settings, alias=registry.CHAMPION)
    except ModelNotFoundError:
        return None


def validate_source(source: Source, contract: DataContract | None) -> dict[str, Any]:
    """Validate the source against the champion's contract (scoring rules: no label needed).

    Without a champion there is no contract yet; training infers one and validates then.
    """
    from churnops.data.validation import validate

    if contract is None:
        return {"rows": len(source.frame), "checked": False, "errors": 0, "warnings": 0}
    report = validate(source.frame, contract, require_target=False).report
    if not report.ok:
        raise DataValidationError(
            f"{source.path} breaks the champion's contract:\n" + report.summary(),
            {"issues": [i.model_dump() for i in report.errors]},
        )
    return {
        "rows": report.rows,
        "checked": True,
        "errors": 0,
        "warnings": len(report.warnings),
    }


def retrain_trigger(
    settings: Settings,
    source: Source,
    champion: Any,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Decide whether the loop trains a challenger now, and say why.

    Idempotence: data a registered version was already trained on never triggers again,
    and the calendar counts from the newest version (the last retrain), so re-running the
    loop does not retrain twice for one reason.
    """
    from churnops import registry
    from churnops.monitoring.store import latest_run
    from churnops.monitoring.triggers import Evidence, decide

    target = champion.model.contract.target if champion else settings.pipeline_target
    if target not in source.frame.columns:
        return {"retrain": False, "reasons": [], "note": f"no {target!r} labels to train on"}
    if champion is None:
        return {"retrain": True, "reasons": ["no champion yet"]}
    versions = registry.list_versions(settings)
    trained_digests = {v.dataset_digest for v in versions if v.dataset_digest}
    newest = versions[0] if versions else champion.version
    reasons = list(
        decide(
            Evidence(
                champion_created=newest.created,
                champion_digest=champion.version.dataset_digest,
                source_digest=None if source.digest in trained_digests else source.digest,
                now=now,
            ),
            settings,
        ).reasons
    )
    last = latest_run(settings)
    if (
        last
        and last["retrain"]
        and last["model_version"] == champion.version.version
        and int(newest.version) <= int(champion.version.version)
    ):
        reasons += [f"monitoring run {last['id']}: {r}" for r in last["reasons"]]
    return {"retrain": bool(reasons), "reasons": reasons}


def train_challenger(settings: Settings, source: Source, champion: Any) -> dict[str, Any]:
    """Train and register a challenger on the source (it infers a fresh contract)."""
    from churnops.stages import train_and_register

    contract = champion.model.contract if champion else None
    target = contract.target if contract else settings.pipeline_target
    id_column = contract.id if contract else settings.pipeline_id
    if id_column is not None and id_column not in source.frame.columns:
        id_column = None
    summary = train_and_register(
        source.frame, settings, target=target, id_column=id_column, source=str(source.path)
    )
    keys = ("model_version", "family", "holdout", "seconds")
    return {k: summary[k] for k in keys}


def promotion_gate(settings: Settings) -> dict[str, Any]:
    """Run the registry's promotion gate (challenger vs champion on the same data)."""
    from churnops import registry

    return registry.promote(settings).to_dict()


def score_batch(settings: Settings, source: Source, day: date | None = None) -> dict[str, Any]:
    """Score the source with the champion into ``churn_scores`` (the batch stage).

    Returns the ``scoring_runs`` row: rows in/scored/rejected, model version, seconds.
    """
    from churnops.batch import score

    day = day or datetime.now(UTC).date()
    return score(settings, source.path, scoring_date=day)


def monitor_source(
    settings: Settings, source: Source, report: Path | None = None
) -> dict[str, Any]:
    """Monitor the source against the champion; store the run and write the report."""
    from churnops.monitoring import monitor

    result = monitor(
        source.frame,
        settings,
        report=report,
        current_name=str(source.path),
        source_digest=source.digest,
    )
    summary = result.to_dict()
    keys = (
        "verdict",
        "retrain",
        "reasons",
        "drift_share",
        "drifted_features",
        "prediction_psi",
        "high_risk_share",
        "estimated",
        "realised",
        "report",
        "mlflow_run_id",
        "monitoring_run_id",
    )
    return {k: summary[k] for k in keys} | {"model_version": result.model_version}
