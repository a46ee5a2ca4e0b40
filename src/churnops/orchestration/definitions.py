"""Dagster definitions for the closed loop: ``dagster dev -m churnops.orchestration.definitions``.

Assets (each a thin call into :mod:`churnops.orchestration.steps`):

    validated_customers ─► challenger_model ─► champion ─┐
            │                                            ▼
            ├──────────────────────────────────────► churn_scores ─► monitoring_report

Jobs: ``retrain_job`` (validate, train, promote), ``scoring_job`` (validate, score),
``monitoring_job`` (validate, score, monitor) and ``closed_loop_job`` (all).
Schedules: daily scoring, weekly monitoring, monthly retraining.
Sensors: ``source_change_sensor`` launches retraining when the source file changes;
``monitoring_trigger_sensor`` launches retraining when a monitoring run asks for it.

Settings come from the usual place (``churnops.yaml`` + ``CHURNOPS_*``); the
``churnops`` resource can override the home folder and the source table, which is how
tests run the jobs in-process on a temporary store.
"""

from pathlib import Path
from typing import Any

import dagster as dg  # no "from __future__ import annotations": Dagster reads the hints

from churnops.config import Settings
from churnops.orchestration import steps


class ChurnopsResource(dg.ConfigurableResource):
    """Where churnops keeps its state and which table the loop reads (empty = settings)."""

    home: str = ""
    source: str = ""

    def settings(self) -> Settings:
        """Return the settings, with this resource's overrides applied."""
        return steps.settings_with(home=self.home, source=self.source)


def _meta(summary: dict[str, Any]) -> dict[str, Any]:
    """Return Dagster metadata for the scalar entries of a step summary."""
    return {
        k: (v if isinstance(v, int | float | str | bool) else dg.MetadataValue.json(v))
        for k, v in summary.items()
        if v is not None
    }


@dg.asset(description="The source customer table, validated against the champion's contract.")
def validated_customers(
    context: dg.AssetExecutionContext, churnops: ChurnopsResource
) -> steps.Source:
    settings = churnops.settings()
    source = steps.read_source(settings)
    summary = steps.validate_source(source, steps.champion_or_none(settings))
    context.add_output_metadata(_meta(summary | {"digest": source.digest}))
    return source


@dg.asset(description="A challenger trained and registered on the validated customers.")
def challenger_model(
    context: dg.AssetExecutionContext,
    churnops: ChurnopsResource,
    validated_customers: steps.Source,
) -> dict[str, Any]:
    settings = churnops.settings()
    summary = steps.train_challenger(
        settings, validated_customers, steps.champion_or_none(settings)
    )
    context.add_output_metadata(_meta(summary))
    return summary


@dg.asset(description="The champion after the promotion gate (challenger vs champion).")
def champion(
    context: dg.AssetExecutionContext,
    churnops: ChurnopsResource,
    challenger_model: dict[str, Any],
) -> dict[str, Any]:
    summary = steps.promotion_gate(churnops.settings())
    context.add_output_metadata(_meta(summary))
    return summary


@dg.asset(
    deps=[champion],
    description="Every customer scored by the champion (batch scoring).",
)
def churn_scores(
    context: dg.AssetExecutionContext,
    churnops: ChurnopsResource,
    validated_customers: steps.Source,
) -> dict[str, Any]:
    summary = steps.score_batch(churnops.settings(), validated_customers)
    context.add_output_metadata(_meta(summary))
    return summary


@dg.asset(
    deps=[churn_scores],
    description="Drift, performance and the retrain decision; HTML report logged to MLflow.",
)
def monitoring_report(
    context: dg.AssetExecutionContext,
    churnops: ChurnopsResource,
    validated_customers: steps.Source,
) -> dict[str, Any]:
    summary = steps.monitor_source(
        churnops.settings(), validated_customers, report_id=f"dagster-{context.run_id[:8]}"
    )
    context.add_output_metadata(_meta(summary))
    return summary


retrain_job = dg.define_asset_job(
    "retrain_job",
    selection=[validated_customers, challenger_model, champion],
    description="Validate, train a challenger, run the promotion gate.",
)
scoring_job = dg.define_asset_job(
    "scoring_job",
    selection=[validated_customers, churn_scores],
    description="Validate and score every customer with the champion.",
)
monitoring_job = dg.define_asset_job(
    "monitoring_job",
    selection=[validated_customers, churn_scores, monitoring_report],
    description="Score and monitor the latest customers.",
)
closed_loop_job = dg.define_asset_job(
    "closed_loop_job",
    selection=dg.AssetSelection.all(),
    description="Everything: validate, train, promote, score, monitor.",
)

daily_scoring = dg.ScheduleDefinition(
    name="daily_scoring", job=scoring_job, cron_schedule="0 6 * * *"
)
weekly_monitoring = dg.ScheduleDefinition(
    name="weekly_monitoring", job=monitoring_job, cron_schedule="0 7 * * 1"
)
monthly_retrain = dg.ScheduleDefinition(
    name="monthly_retrain", job=retrain_job, cron_schedule="0 3 1 * *"
)


def source_fingerprint(source: str | Path) -> str | None:
    """Return a cheap change marker of a file or object (size + mtime), None when missing.

    Cheap on purpose: the sensor ticks every minute, and the pipeline digests the
    content itself before it retrains, so a touched but unchanged table costs one run
    that finds nothing new.
    """
    import pyarrow.fs as pafs

    from churnops.data.storage import locate
    from churnops.errors import DataSourceError

    try:
        found = locate(source)
        info = (found.filesystem or pafs.LocalFileSystem()).get_file_info(found.path)
    except (OSError, DataSourceError):
        return None
    if info.type != pafs.FileType.File:
        return None
    return f"{info.size}-{info.mtime_ns}"


@dg.sensor(job=retrain_job, minimum_interval_seconds=60)
def source_change_sensor(context: dg.SensorEvaluationContext, churnops: ChurnopsResource):
    """Launch retraining when the source file changes (a watchdog on size and mtime)."""
    source = churnops.settings().pipeline_source
    if source is None:
        return dg.SkipReason("No source configured (CHURNOPS_PIPELINE_SOURCE).")
    marker = source_fingerprint(source)
    if marker is None:
        return dg.SkipReason(f"Source {source} does not exist.")
    if marker == context.cursor:
        return dg.SkipReason(f"Source {source} unchanged.")
    context.update_cursor(marker)
    return dg.RunRequest(run_key=f"source-{marker}", tags={"churnops.trigger": "source"})


@dg.sensor(job=retrain_job, minimum_interval_seconds=60)
def monitoring_trigger_sensor(context: dg.SensorEvaluationContext, churnops: ChurnopsResource):
    """Launch retraining when the newest monitoring run decided to retrain."""
    from churnops.monitoring.store import latest_run

    last = latest_run(churnops.settings())
    if last is None:
        return dg.SkipReason("No monitoring run yet.")
    if context.cursor and int(context.cursor) >= last["id"]:
        return dg.SkipReason(f"Monitoring run {last['id']} already handled.")
    context.update_cursor(str(last["id"]))
    if not last["retrain"]:
        return dg.SkipReason(f"Monitoring run {last['id']}: no retrain trigger.")
    return dg.RunRequest(
        run_key=f"monitoring-{last['id']}",
        tags={"churnops.trigger": "monitoring", "churnops.reasons": "; ".join(last["reasons"])},
    )


defs = dg.Definitions(
    assets=[validated_customers, challenger_model, champion, churn_scores, monitoring_report],
    jobs=[retrain_job, scoring_job, monitoring_job, closed_loop_job],
    schedules=[daily_scoring, weekly_monitoring, monthly_retrain],
    sensors=[source_change_sensor, monitoring_trigger_sensor],
    resources={"churnops": ChurnopsResource()},
)
