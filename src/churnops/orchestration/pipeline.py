"""``churnops pipeline run``: the closed loop, once, end to end, idempotent.

    digest -> validate -> trigger -> train -> promote -> score -> monitor -> report

Every step writes one row to ``pipeline_steps`` (ok, skipped or failed, with its summary),
so operations can see what each run did. Re-running on unchanged data changes nothing:
the trigger never retrains on data a version was already trained on, and scoring and
monitoring are skipped when the last completed run saw the same data with the same
champion.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from churnops.config import Settings
from churnops.orchestration import steps
from churnops.progress import ProgressFn
from churnops.progress import step as progress_step
from churnops.store import PipelineStep, session_scope

STEPS = ("digest", "validate", "trigger", "train", "promote", "score", "monitor", "report")


class _Recorder:
    """Run steps, time them and write one ``pipeline_steps`` row per step."""

    def __init__(self, settings: Settings, progress: ProgressFn | None = None) -> None:
        self.settings = settings
        self.progress = progress
        self.run_id = uuid.uuid4().hex[:12]
        self.digest: str | None = None
        self.rows: list[dict[str, Any]] = []

    def run(self, step_name: str, func: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        started = datetime.now(UTC)
        try:
            with progress_step(self.progress, f"pipeline: {step_name}"):
                detail = func()
        except Exception as exc:
            self._write(step_name, "failed", started, {"error": str(exc)})
            raise
        self._write(step_name, "ok", started, detail)
        return detail

    def skip(self, step: str, why: str) -> None:
        now = datetime.now(UTC)
        self._write(step, "skipped", now, {"reason": why})

    def _write(self, step: str, status: str, started: datetime, detail: dict[str, Any]) -> None:
        finished = datetime.now(UTC)
        text = json.dumps(detail, default=str)
        with session_scope(self.settings) as session:
            session.add(
                PipelineStep(
                    pipeline_run=self.run_id,
                    step=step,
                    status=status,
                    started=started,
                    finished=finished,
                    source_digest=self.digest,
                    detail=text,
                )
            )
        self.rows.append(
            {
                "step": step,
                "status": status,
                "seconds": round((finished - started).total_seconds(), 3),
                "summary": _short(detail),
                "detail": json.loads(text),
            }
        )


def run_pipeline(
    settings: Settings,
    source: Path | str | None = None,
    now: datetime | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Run the closed loop once and return every step's summary.

    ``progress(task, done, total)`` is called around every step (and inside training).
    """
    started = time.perf_counter()
    rec = _Recorder(settings, progress)
    with progress_step(progress, "pipeline: read source"):
        src = steps.read_source(settings, source)
    rec.digest = src.digest
    rec.run("digest", lambda: {"path": str(src.path), "rows": len(src.frame), "digest": src.digest})
    champion = steps.champion_or_none(settings)
    rec.run("validate", lambda: steps.validate_source(src, champion))
    trigger = rec.run("trigger", lambda: steps.retrain_trigger(settings, src, champion, now))
    if trigger["retrain"]:
        rec.run("train", lambda: steps.train_challenger(settings, src, champion, progress=progress))
        if champion is None:
            rec.skip("promote", "first model: it became champion when registered")
        else:
            rec.run("promote", lambda: steps.promotion_gate(settings))
        champion = steps.champion_or_none(settings)
    else:
        rec.skip("train", trigger.get("note", "no trigger fired"))
        rec.skip("promote", "nothing new to promote")
    if champion is None:
        for step in ("score", "monitor"):
            rec.skip(step, "no champion: the source has no labels to train the first model")
    elif _already_done(settings, src.digest, champion.version.version):
        for step in ("score", "monitor"):
            rec.skip(step, f"already done for this data with champion v{champion.version.version}")
    else:
        rec.run("score", lambda: steps.score_batch(settings, src))
        rec.run(
            "monitor",
            lambda: (
                steps.monitor_source(settings, src, report_id=rec.run_id)
                | {"champion_version": champion.version.version}
            ),
        )
    summary = {
        "pipeline_run": rec.run_id,
        "source": str(src.path),
        "digest": src.digest,
        "champion_version": champion.version.version if champion else None,
        "retrained": bool(trigger["retrain"]),
        "steps": rec.rows,
    }
    rec.run("report", lambda: _write_summary(settings, rec.run_id, summary))
    summary["steps"] = rec.rows
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary


def list_steps(settings: Settings, pipeline_run: str | None = None) -> list[dict[str, Any]]:
    """Return stored pipeline steps (of one run, or all), oldest first."""
    query = sa.select(PipelineStep).order_by(PipelineStep.id)
    if pipeline_run:
        query = query.where(PipelineStep.pipeline_run == pipeline_run)
    with session_scope(settings) as session:
        return [
            {
                "pipeline_run": row.pipeline_run,
                "step": row.step,
                "status": row.status,
                "source_digest": row.source_digest,
                "detail": json.loads(row.detail),
            }
            for row in session.scalars(query)
        ]


def _already_done(settings: Settings, digest: str, champion_version: str) -> bool:
    """Return True when a completed monitor step saw this data with this champion."""
    query = (
        sa.select(PipelineStep)
        .where(PipelineStep.step == "monitor")
        .where(PipelineStep.status == "ok")
        .where(PipelineStep.source_digest == digest)
        .order_by(PipelineStep.id.desc())
    )
    with session_scope(settings) as session:
        for row in session.scalars(query):
            if json.loads(row.detail).get("champion_version") == champion_version:
                return True
    return False


def _write_summary(settings: Settings, run_id: str, summary: dict[str, Any]) -> dict[str, Any]:
    path = settings.ensure_home() / "reports" / f"pipeline-{run_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, default=str))
    return {"path": str(path)}


def _short(detail: dict[str, Any]) -> str:
    for key in ("reason", "error", "note"):
        if detail.get(key) is not None:  # a scoring run's record carries "error": None
            return str(detail[key])
    if "verdict" in detail:
        return f"verdict {detail['verdict']}; reasons: {'; '.join(detail['reasons']) or 'none'}"
    if "retrain" in detail:
        return "retrain: " + ("; ".join(detail["reasons"]) if detail["retrain"] else "no")
    if "decision" in detail:
        return f"{detail['decision']}: {detail['reason']}"
    if "model_version" in detail and "family" in detail:
        return f"trained v{detail['model_version']} ({detail['family']})"
    if "rows_scored" in detail:
        return (
            f"{detail['rows_scored']:,} scored into churn_scores for {detail['scoring_date']}, "
            f"{detail['high_risk']:,} high risk, {detail['rows_rejected']:,} rejected"
        )
    if "digest" in detail:
        return f"{detail['rows']:,} rows, digest {detail['digest']}"
    if "checked" in detail:
        return (
            f"{detail['rows']:,} rows, {detail['warnings']} warning(s)"
            if detail["checked"]
            else "no contract yet (first model)"
        )
    return ", ".join(f"{k}={v}" for k, v in detail.items())
