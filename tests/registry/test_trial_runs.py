"""A training run in MLflow: named after its winner, one child run per trial, a leaderboard."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from churnops import registry
from churnops.config import Settings
from churnops.registry.catalog import local_path
from churnops.registry.models import LEADERBOARD_ARTIFACT, PARENT_TAG, RegisteredVersion
from churnops.training.run import TrainResult, train
from tests.factories import make_customers

Progress = list[tuple[str, int, int]]


@pytest.fixture(scope="module")
def logged(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Settings, TrainResult, RegisteredVersion, Progress]:
    """Three trials, trained and logged with a progress recorder."""
    settings = Settings(home=tmp_path_factory.mktemp("runs") / "home", trials=3, cv_folds=3)
    calls: Progress = []
    result = train(
        make_customers(300, seed=3),
        settings,
        target="churn",
        id_column="customer_id",
        families=["logistic"],
    )
    version = registry.log_training(result, settings, progress=lambda *c: calls.append(c))
    return settings, result, version, calls


@pytest.mark.integration
def test_run_is_named_after_the_winner_with_one_child_per_trial(
    logged: tuple[Settings, TrainResult, RegisteredVersion, Progress],
) -> None:
    """`train <family> <date>`; each trial a finished child with its params and CV score."""
    from mlflow import MlflowClient

    settings, result, version, _ = logged
    client = MlflowClient(settings.resolved_tracking_uri)
    parent = client.get_run(version.run_id)
    assert re.fullmatch(rf"train {result.family} \d{{4}}-\d\d-\d\d \d\d:\d\d", parent.info.run_name)
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.`{PARENT_TAG}` = '{version.run_id}'"
    )
    assert len(children) == len(result.trials) == 3
    by_trial = {(c.data.tags["churnops.family"], c.info.run_name): c for c in children}
    for trial in result.trials:
        child = by_trial[(trial.family, f"{trial.family} trial {trial.number}")]
        assert child.data.params == {k: str(v) for k, v in trial.params.items()}
        assert child.data.metrics["cv_roc_auc"] == pytest.approx(trial.score)
        assert child.data.metrics["seconds"] == pytest.approx(trial.seconds)
        assert child.info.status == "FINISHED"
        assert child.info.end_time - child.info.start_time == int(trial.seconds * 1000)
    chosen = [c.info.run_name for c in children if c.data.tags["churnops.chosen"] == "true"]
    assert chosen == [f"{result.family} trial {result.chosen_trial}"]


@pytest.mark.integration
def test_leaderboard_table_lists_every_trial(
    logged: tuple[Settings, TrainResult, RegisteredVersion, Progress],
) -> None:
    """The parent's leaderboard.json (an MLflow table) has a row per trial, one chosen."""
    from mlflow import MlflowClient

    settings, result, version, _ = logged
    run = MlflowClient(settings.resolved_tracking_uri).get_run(version.run_id)
    folder = local_path(run.info.artifact_uri)
    assert isinstance(folder, Path)
    table = json.loads((folder / LEADERBOARD_ARTIFACT).read_text())
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]
    assert sorted((r["family"], r["trial"]) for r in rows) == sorted(
        (t.family, t.number) for t in result.trials
    )
    assert {"cv_score", "seconds", "params", "state"} <= set(table["columns"])
    assert [r["family"] for r in rows if r["chosen"]] == [result.family]


@pytest.mark.integration
def test_logging_and_registering_show_progress(
    logged: tuple[Settings, TrainResult, RegisteredVersion, Progress],
) -> None:
    """Opening MLflow, logging the run, logging the model and registering each show a step."""
    calls = logged[3]
    tasks = list(dict.fromkeys(task for task, _, _ in calls))
    assert tasks == ["open MLflow", "log run to MLflow", "log model", "register version"]
    assert all(calls[2 * i : 2 * i + 2] == [(t, 0, 1), (t, 1, 1)] for i, t in enumerate(tasks))
