"""The steps of the closed loop, written once as plain functions.

    validate -> retrain trigger -> train -> promotion gate -> score -> monitor

Three drivers run them and add only their own policy: ``churnops pipeline run``
(:mod:`~churnops.orchestration.pipeline`: order, idempotence, a stored row per step),
Dagster (:mod:`~churnops.orchestration.definitions`: one asset per step, schedules and
sensors) and the demo's simulated weeks (:mod:`churnops.monitoring.simulation`: late
labels, a cool-down between retrains). Each step takes settings and data and returns a
JSON-safe summary, so its result can be stored in ``pipeline_steps``, printed by
``--json`` and shown in the Dagster UI; :func:`monitor` also hands back the whole result
for a driver that reads more than the summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from churnops.config import Settings
from churnops.data.contract import frame_digest
from churnops.errors import ConfigError, DataValidationError, ModelNotFoundError

if TYPE_CHECKING:
    from churnops.monitoring import MonitoringResult
    from churnops.progress import ProgressFn
    from churnops.registry.models import LoadedModel

_MONITOR_KEYS = (
    "verdict",
    "retrain",
    "reasons",
    "drift_share",
    "drifted_features",
    "prediction_psi",
    "high_risk_share",
    "estimated",
    "estimated_band",
    "estimate_check",
    "realised",
    "derived",
    "warnings",
    "report",
    "mlflow_run_id",
    "monitoring_run_id",
)

# What a drift check keeps of a monitoring result: drift and PSI, not performance.
_DRIFT_KEYS = (
    "verdict",
    "reasons",
    "drift_share",
    "drifted_features",
    "features",
    "data_quality",
    "prediction_psi",
    "high_risk_share",
    "warnings",
)


def settings_with(home: str | Path | None = None, source: str | Path | None = None) -> Settings:
    """Return the configured settings with a driver's own home and source (empty: keep).

    The drivers (Dagster resources, Airflow DAG factories) name these two per deployment;
    the rest comes from ``churnops.yaml`` and ``CHURNOPS_*`` when a task runs.
    """
    from churnops.config import get_settings

    updates: dict[str, Any] = {}
    if home:
        updates["home"] = Path(home)
    if source:
        updates["pipeline_source"] = str(source)  # the setting keeps an s3:// URL as text
    return get_settings().model_copy(update=updates)


@dataclass
class Source:
    """A customer table the loop runs on, read once.

    ``digest`` is what the changed-data trigger compares with the champion's training
    data. A table built in memory that is not training data as it stands (a simulated
    week, whose labels arrive a week later) has no file and no digest, so it never fires
    that trigger.
    """

    name: str
    frame: pd.DataFrame
    digest: str | None = None
    path: str | None = None  # the file or s3:// object it was read from


def read_source(settings: Settings, source: Path | str | None = None) -> Source:
    """Read the pipeline's source table (``source`` or ``settings.pipeline_source``).

    The digest is of the table's content (:func:`frame_digest`), so a file and an object
    holding the same rows are the same data to the changed-data trigger, whatever their
    ETag, mtime or format.
    """
    from churnops.data.sources import read_table

    path = source or settings.pipeline_source
    if path is None:
        raise ConfigError(
            "No source table: pass --source FILE or set CHURNOPS_PIPELINE_SOURCE.",
            {"setting": "pipeline_source"},
        )
    frame = read_table(path)
    return Source(name=str(path), frame=frame, digest=frame_digest(frame), path=str(path))


def champion_or_none(settings: Settings) -> LoadedModel | None:
    """Return the champion, or None when nothing is registered yet (the loop's first run)."""
    from churnops import registry

    try:
        return registry.load_model(settings, alias=registry.CHAMPION)
    except ModelNotFoundError:
        return None


def validate_source(source: Source, champion: LoadedModel | None) -> dict[str, Any]:
    """Validate the source against the champion's contract (scoring rules: no label needed).

    Without a champion there is no contract yet; training infers one and validates then.
    """
    from churnops.data.validation import validate

    if champion is None:
        return {"rows": len(source.frame), "checked": False, "errors": 0, "warnings": 0}
    report = validate(source.frame, champion.model.contract, require_target=False).report
    if not report.ok:
        raise DataValidationError(
            f"{source.name} breaks the champion's contract:\n" + report.summary(),
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
    champion: LoadedModel | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Decide whether the loop trains a challenger now, and say why.

    Only evidence about this source counts: the source against the data the champion
    was trained on (its digest), and monitoring runs over this very content — a run on
    another table says nothing about whether this one is worth training on. Idempotence:
    data a registered version was already trained on never triggers again, and the
    calendar counts from the newest version (the last retrain), so re-running the loop
    does not retrain twice for one reason; when nothing fires, ``note`` says why.
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
    trained_on = {v.dataset_digest: v.version for v in versions if v.dataset_digest}
    newest = versions[0] if versions else champion.version
    reasons = list(
        decide(
            Evidence(
                champion_created=newest.created,
                champion_digest=champion.version.dataset_digest,
                source_digest=None if source.digest in trained_on else source.digest,
                now=now,
            ),
            settings,
        ).reasons
    )
    last = latest_run(settings, digest=source.digest) if source.digest else None
    if (
        last
        and last["retrain"]
        and last["model_version"] == champion.version.version
        and int(newest.version) <= int(champion.version.version)
    ):
        reasons += [f"monitoring run {last['id']} on this data: {r}" for r in last["reasons"]]
    if reasons:
        return {"retrain": True, "reasons": reasons}
    if source.digest in trained_on:
        note = (
            f"unchanged: v{trained_on[source.digest]} was trained on this data "
            f"(digest {source.digest}), and no monitoring run on it asks for a retrain"
        )
    else:
        note = "no trigger fired on this data"
    return {"retrain": False, "reasons": [], "note": note}


def train_challenger(
    settings: Settings,
    source: Source,
    champion: LoadedModel | None,
    *,
    trials: int | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Train and register a challenger on the source, with a fresh contract.

    Target and id columns follow the champion's contract, so a new dataset needs no
    configuration after the first model. The fresh contract is inferred from the source
    and loosened to accept every record the champion accepts
    (:func:`~churnops.data.contract.accepting_all_of`), so a promotion never starts
    refusing customers. ``trials`` overrides the tuning budget (the demo's weeks retrain
    on a small one).
    """
    from churnops.data.contract import accepting_all_of, infer_contract
    from churnops.stages import train_and_register

    contract = champion.model.contract if champion else None
    target = contract.target if contract else settings.pipeline_target
    id_column = contract.id if contract else settings.pipeline_id
    if id_column is not None and id_column not in source.frame.columns:
        id_column = None
    fresh = None
    if contract is not None:
        fresh = accepting_all_of(infer_contract(source.frame, target, id_column), contract)
    summary = train_and_register(
        source.frame,
        settings,
        target=target,
        id_column=id_column,
        contract=fresh,
        trials=trials,
        source=source.name,
        progress=progress,
    )
    keys = ("model_version", "family", "holdout", "seconds")
    return {k: summary[k] for k in keys}


def promotion_gate(settings: Settings, metric: str | None = None) -> dict[str, Any]:
    """Run the registry's promotion gate (challenger vs champion on the same data).

    ``metric`` overrides the primary metric, so the gate can judge what the trigger
    watched (the demo's weeks gate on F1: covariate shift moves it, ROC-AUC barely).
    """
    from churnops import registry

    return registry.promote(settings, metric=metric).to_dict()


def score_batch(settings: Settings, source: Source, day: date | None = None) -> dict[str, Any]:
    """Score the source with the champion into ``churn_scores`` (the batch stage).

    Returns the ``scoring_runs`` row: rows in/scored/rejected, model version, seconds.
    The batch stage streams the file itself, so the source must have been read from one.
    """
    from churnops.batch import score

    day = day or datetime.now(UTC).date()
    return score(settings, source.path, scoring_date=day)


def monitor(
    settings: Settings,
    source: Source,
    *,
    champion: LoadedModel | None = None,
    labels: pd.DataFrame | None = None,
    report_id: str | None = None,
    store: bool = True,
) -> MonitoringResult:
    """Monitor the source against the champion and store the run.

    Returns the whole result, for a driver that reads more than the step summary (the
    demo's weeks round it their own way); :func:`monitor_source` is the step as stored.

    Args:
        settings: thresholds, triggers, where the store and the registry are.
        source: the customers to check.
        champion: the model to monitor, when the caller already holds it.
        labels: late labels (id + target) for the source's rows.
        report_id: names the HTML report ``monitor-{report_id}.html``, written to
            ``settings.reports_location`` (default home/reports); no report when omitted.
        store: record the run in the store (where the retrain trigger reads it); a
            look that decides nothing (:func:`drift_check`) stores nothing.
    """
    from churnops.monitoring import monitor as run_monitor
    from churnops.monitoring.report import report_location

    report = None
    if report_id is not None:
        report = report_location(settings, f"monitor-{report_id}.html")
    return run_monitor(
        source.frame,
        settings,
        labels=labels,
        report=report,
        current_name=source.name,
        source_digest=source.digest,
        loaded=champion,
        store=store,
    )


def drift_check(settings: Settings, source: Source) -> dict[str, Any]:
    """Drift and PSI of every feature and of the scores against the champion's training
    data, and the data-quality figures; nothing stored, so no retrain follows from it."""
    summary = monitor(settings, source, store=False).to_dict()
    return {k: summary[k] for k in _DRIFT_KEYS}


def monitor_source(
    settings: Settings, source: Source, report_id: str | None = None
) -> dict[str, Any]:
    """Monitor the source against the champion; return the step's summary (see :func:`monitor`)."""
    result = monitor(settings, source, report_id=report_id)
    summary = result.to_dict()
    return {k: summary[k] for k in _MONITOR_KEYS} | {"model_version": result.model_version}
