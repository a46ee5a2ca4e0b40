"""Airflow 3 DAGs for the closed loop: one more thin driver over the same steps.

    churnops_data_quality  daily    validate ─► drift      (contract checks, PSI per feature
                                                            and of the scores; stores nothing)
    churnops_training      monthly  validate ─► trigger ─► train ─► promote
    churnops_scoring       daily    validate ─► score      (into ``churn_scores``)
    churnops_monitoring    weekly   validate ─► monitor    (a ``monitoring_runs`` row + report)

Every task is a call into :mod:`churnops.orchestration.steps`, the functions
``churnops pipeline run`` and Dagster call, plus only Airflow's own policy: skipping what
has nothing to work on, as the pipeline does (no champion yet, no retrain trigger fired).
Tasks hand each other the steps' JSON-safe summaries through XCom, never the table: each
task re-reads the source, so any worker can run it, and refuses to go on when the content
changed since ``validate`` read it, so one run judges one table.

Airflow imports this module (``envs/airflow/dags/churnops_dags.py``); nothing else in churnops
does, so churnops runs without Airflow. Airflow pins its own dependencies and lives in its
own environment (``make airflow-env``; see docs/airflow.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, XComArg, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from churnops.config import Settings
from churnops.orchestration import steps

# The same hours as the Dagster schedules; data quality runs an hour before scoring.
SCHEDULES: dict[str, str] = {
    "data_quality": "0 5 * * *",
    "training": "0 3 1 * *",
    "scoring": "0 6 * * *",
    "monitoring": "0 7 * * 1",
}
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class _Loop:
    """Which table a set of DAGs reads and where it keeps state (None: the settings').

    Settings are read when a task runs, never when Airflow parses the DAG file, so the
    scheduler's parse loop opens no store and each worker reads its own environment.
    """

    source: str | None
    home: str | None

    def settings(self) -> Settings:
        return steps.settings_with(home=self.home)

    def open(self, validated: dict[str, Any]) -> tuple[Settings, steps.Source]:
        """Return the settings and the source again, as ``validate`` saw it."""
        settings = self.settings()
        source = steps.read_source(settings, self.source)
        if source.digest != validated["digest"]:
            raise AirflowFailException(
                f"{source.name} changed since this run validated it (digest "
                f"{validated['digest']}, now {source.digest}): run the DAG again."
            )
        return settings, source


def _require_champion(validated: dict[str, Any]) -> None:
    """Skip a step that needs a champion when there is none yet (as the pipeline does)."""
    if validated["champion_version"] is None:
        raise AirflowSkipException("No champion yet: the training DAG registers the first model.")


def _run_day() -> date:
    """Return the day this run stands for: re-running it rewrites that day, not today."""
    run = get_current_context()["dag_run"]
    return (run.logical_date or run.run_after).date()


def _validate(loop: _Loop) -> XComArg:
    @task
    def validate() -> dict[str, Any]:
        """Check the source against the champion's contract; fail on rows that break it."""
        settings = loop.settings()
        source = steps.read_source(settings, loop.source)
        champion = steps.champion_or_none(settings)
        return steps.validate_source(source, champion) | {
            "source": source.name,
            "digest": source.digest,
            "champion_version": champion.version.version if champion else None,
        }

    return validate()


def _data_quality(loop: _Loop) -> None:
    @task
    def drift(validated: dict[str, Any]) -> dict[str, Any]:
        """Drift and PSI of every feature and of the scores against the training data
        (stored nowhere: the weekly monitoring run is the one the retrain trigger reads)."""
        _require_champion(validated)
        return steps.drift_check(*loop.open(validated))

    drift(_validate(loop))


def _training(loop: _Loop) -> None:
    @task
    def trigger(validated: dict[str, Any]) -> dict[str, Any]:
        """Decide whether to train now, and why (idempotent: see ``retrain_trigger``)."""
        settings, source = loop.open(validated)
        return steps.retrain_trigger(settings, source, steps.champion_or_none(settings))

    @task
    def train(validated: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
        """Tune, train and register a challenger on the source."""
        if not decision["retrain"]:
            raise AirflowSkipException(decision.get("note", "No retrain trigger fired."))
        settings, source = loop.open(validated)
        return steps.train_challenger(settings, source, steps.champion_or_none(settings))

    @task
    def promote(validated: dict[str, Any]) -> dict[str, Any]:
        """Run the promotion gate: the challenger must beat the champion."""
        if validated["champion_version"] is None:
            raise AirflowSkipException("First model: it became champion when registered.")
        return steps.promotion_gate(loop.settings())

    validated = _validate(loop)
    train(validated, trigger(validated)) >> promote(validated)


def _scoring(loop: _Loop) -> None:
    @task
    def score(validated: dict[str, Any]) -> dict[str, Any]:
        """Score every customer with the champion into ``churn_scores`` for the run's day."""
        _require_champion(validated)
        settings, source = loop.open(validated)
        return steps.score_batch(settings, source, day=_run_day())

    score(_validate(loop))


def _monitoring(loop: _Loop) -> None:
    @task
    def monitor(validated: dict[str, Any]) -> dict[str, Any]:
        """Drift, performance and the retrain decision, stored with an HTML report."""
        _require_champion(validated)
        settings, source = loop.open(validated)
        run_after = get_current_context()["dag_run"].run_after
        return steps.monitor_source(
            settings, source, report_id=f"airflow-{run_after:%Y%m%dT%H%M%S}"
        )

    monitor(_validate(loop))


_BUILDERS: dict[str, tuple[Callable[[_Loop], None], str]] = {
    "data_quality": (
        _data_quality,
        "Validate the source against the champion's contract (fails on bad rows), then "
        "report drift and PSI per feature and of the scores.",
    ),
    "training": (
        _training,
        "Validate, decide whether to retrain, tune-train-register a challenger, run the "
        "promotion gate.",
    ),
    "scoring": (_scoring, "Validate, then score every customer into churn_scores."),
    "monitoring": (
        _monitoring,
        "Validate, then monitor drift and performance; store the run and its report.",
    ),
}


def build_dags(
    source: str | Path | None = None,
    home: str | Path | None = None,
    *,
    prefix: str = "churnops",
    schedules: Mapping[str, str | None] | None = None,
) -> dict[str, DAG]:
    """Build the four DAGs, keyed by DAG id (``{prefix}_data_quality``, ...).

    With no arguments they run on the configured source and home (``churnops.yaml``,
    ``CHURNOPS_PIPELINE_SOURCE``, ``CHURNOPS_HOME``); for another table pass ``source``
    (and usually ``home`` and ``prefix``: DAG ids are unique in a deployment).

    Args:
        source: the customer table (a path or URL ``steps.read_source`` reads).
        home: churnops's home folder for these DAGs' store and registry.
        prefix: the DAG ids' prefix.
        schedules: cron or preset per DAG name (``data_quality``, ``training``,
            ``scoring``, ``monitoring``) to replace :data:`SCHEDULES`; None = manual only.
    """
    loop = _Loop(
        str(source) if source is not None else None, str(home) if home is not None else None
    )
    when = SCHEDULES | dict(schedules or {})
    dags = {}
    for name, (build, doc) in _BUILDERS.items():
        with DAG(
            f"{prefix}_{name}",
            schedule=when[name],
            start_date=START,
            catchup=False,
            max_active_runs=1,  # two runs of one DAG would race on the same store
            tags=["churnops"],
            doc_md=doc,
        ) as dag:
            build(loop)
        dags[dag.dag_id] = dag
    return dags
