"""Airflow 3: the four DAGs run with ``dag.test()`` in their own environment (.airflow-venv).

Airflow pins its own dependencies, so it is not in the main environment: these tests drive
``.airflow-venv/bin/python`` as a subprocess (``make airflow-env`` creates it) and check
the DAGs' effects from here, in the churnops store and registry they wrote to.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from churnops.config import Settings
from churnops.data.synth import write_synthetic
from tests.conftest import home_tracking_uri

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_PYTHON = ROOT / ".airflow-venv" / "bin" / "python"
ROWS = 600

# Runs in .airflow-venv. argv[1] is a JSON list of [dag_id, table]: each table is copied
# over the DAGs' source before its DAG runs, so one DAG meets a clean day, then a bad one.
RUNNER = """
import json, shutil, sys
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
from churnops.config import get_settings
from churnops.orchestration.airflow import build_dags

dags = build_dags()
source = get_settings().pipeline_source
for dag_id, table in json.loads(sys.argv[1]):
    shutil.copyfile(table, source)
    run = dags[dag_id].test()
    with create_session() as session:
        tasks = {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}
        rows = session.scalars(
            XComModel.get_many(run_id=run.run_id, dag_ids=dag_id, key="return_value")
        )
        xcom = {row.task_id: XComModel.deserialize_value(row) for row in rows}
    result = {"dag": dag_id, "state": str(run.state), "tasks": tasks, "xcom": xcom}
    print("RUN " + json.dumps(result, default=str), flush=True)
"""


def _airflow_env(tmp: Path) -> dict[str, str]:
    """Return the subprocesses' environment: Airflow and churnops homes in ``tmp``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CHURNOPS_", "MLFLOW_", "AIRFLOW", "VIRTUAL_ENV", "PYTHON"))
    }
    return env | {
        "AIRFLOW_HOME": str(tmp / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "envs" / "airflow" / "dags"),  # the example file
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "CHURNOPS_HOME": str(tmp / "home"),
        "CHURNOPS_PIPELINE_SOURCE": str(tmp / "customers.csv"),
        "CHURNOPS_TRIALS": "1",
        "CHURNOPS_CV_FOLDS": "2",
        "CHURNOPS_FAMILIES": '["logistic"]',
    }


@pytest.fixture(scope="module")
def airflow_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the four DAGs once in .airflow-venv; return their runs and where they wrote."""
    if not AIRFLOW_PYTHON.exists():
        why = f"{AIRFLOW_PYTHON} is missing: run make airflow-env"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp("airflow")
    env = _airflow_env(tmp)
    clean, bad = tmp / "clean.csv", tmp / "bad.csv"
    write_synthetic(clean, ROWS, seed=8)
    frame = pd.read_csv(clean)
    frame.loc[:9, "contract"] = "Lifetime"  # a level the contract has never seen
    frame.to_csv(bad, index=False)

    migrate = subprocess.run(
        [str(AIRFLOW_PYTHON.parent / "airflow"), "db", "migrate"],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    plan = [
        ["churnops_training", str(clean)],
        ["churnops_data_quality", str(clean)],
        ["churnops_scoring", str(clean)],
        ["churnops_monitoring", str(clean)],
        ["churnops_data_quality", str(bad)],
    ]
    done = subprocess.run(
        [str(AIRFLOW_PYTHON), "-c", RUNNER, json.dumps(plan)],
        env=env,
        cwd=tmp,  # no churnops.yaml from the checkout
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    runs = [json.loads(line[4:]) for line in done.stdout.splitlines() if line.startswith("RUN ")]
    assert [r["dag"] for r in runs] == [dag for dag, _ in plan], output[-5000:]
    home = tmp / "home"
    return {
        "runs": runs,
        "output": output,
        "settings": Settings(home=home, tracking_uri=home_tracking_uri(home)),
    }


@pytest.mark.integration
def test_monthly_dag_trains_and_registers_the_first_model(airflow_runs: dict[str, Any]) -> None:
    """The training DAG validates, fires the no-champion trigger, trains and registers v1;
    the gate is skipped because the first model is champion on registration."""
    from churnops import registry

    run = airflow_runs["runs"][0]
    assert run["state"] == "success"
    assert run["tasks"] == {
        "validate": "success",
        "trigger": "success",
        "train": "success",
        "promote": "skipped",
    }
    assert run["xcom"]["trigger"]["reasons"] == ["no champion yet"]
    champion = registry.load_model(airflow_runs["settings"], alias=registry.CHAMPION)
    assert champion.version.version == run["xcom"]["train"]["model_version"] == "1"


@pytest.mark.integration
def test_data_quality_dag_reports_psi_on_a_clean_table(airflow_runs: dict[str, Any]) -> None:
    """On a clean table the data-quality DAG succeeds with the PSI of every feature and of
    the scores, and stores no monitoring run (the weekly DAG's run is the one that counts)."""
    run = airflow_runs["runs"][1]
    assert run["state"] == "success", airflow_runs["output"][-3000:]
    validated = run["xcom"]["validate"]
    assert (validated["checked"], validated["errors"], validated["rows"]) == (True, 0, ROWS)
    drift = run["xcom"]["drift"]
    assert "tenure" in drift["features"]
    assert all(f["psi"] >= 0 for f in drift["features"].values())
    assert drift["prediction_psi"] >= 0
    assert "monitoring_run_id" not in drift


@pytest.mark.integration
def test_data_quality_dag_fails_on_bad_rows(airflow_runs: dict[str, Any]) -> None:
    """A table whose rows break the champion's contract fails validation, and the run."""
    run = airflow_runs["runs"][4]
    assert run["state"] == "failed"
    assert run["tasks"] == {"validate": "failed", "drift": "upstream_failed"}
    assert "breaks the champion's contract" in airflow_runs["output"]


@pytest.mark.integration
def test_daily_scoring_dag_writes_every_customer(airflow_runs: dict[str, Any]) -> None:
    """The scoring DAG scores every customer with the champion into ``churn_scores``."""
    from churnops.store import churn_scores, session_scope

    run = airflow_runs["runs"][2]
    assert run["state"] == "success"
    assert run["xcom"]["score"]["rows_scored"] == ROWS
    with session_scope(airflow_runs["settings"]) as session:
        stored = session.scalar(sa.select(sa.func.count()).select_from(churn_scores))
    assert stored == ROWS


@pytest.mark.integration
def test_weekly_monitoring_dag_stores_a_run_and_report(airflow_runs: dict[str, Any]) -> None:
    """The monitoring DAG stores one monitoring run for the champion, with its report."""
    from churnops.monitoring.store import latest_run

    run = airflow_runs["runs"][3]
    assert run["state"] == "success"
    summary = run["xcom"]["monitor"]
    stored = latest_run(airflow_runs["settings"])
    assert stored is not None
    assert stored["id"] == summary["monitoring_run_id"]
    assert stored["model_version"] == "1"
    assert Path(summary["report"]).exists()


def test_only_the_airflow_module_imports_airflow() -> None:
    """churnops imports without Airflow: only ``orchestration/airflow.py`` names it, and
    importing churnops and its orchestration package loads no ``airflow`` module."""
    package = ROOT / "src" / "churnops"
    importers = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            if any(n == "airflow" or n.startswith("airflow.") for n in names):
                importers.add(path.relative_to(package).as_posix())
    assert importers == {"orchestration/airflow.py"}
    check = (
        "import sys, churnops, churnops.orchestration, churnops.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"


def test_airflow_lock_pins_every_churnops_dependency() -> None:
    """envs/airflow/requirements.txt pins Airflow as requirements.in asks, and a version of every
    churnops dependency that pyproject.toml accepts: the Airflow env installs from it alone."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    def pins(path: Path) -> dict[str, str]:
        lines = path.read_text(encoding="utf-8").splitlines()
        named = [line.split(";")[0].strip().split("==") for line in lines if "==" in line]
        return {canonicalize_name(name): version for name, version in named}

    locked = pins(ROOT / "envs" / "airflow" / "requirements.txt")
    assert pins(ROOT / "envs" / "airflow" / "requirements.in").items() <= locked.items()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    stale = []
    for dependency in map(Requirement, project["dependencies"]):
        version = locked.get(canonicalize_name(dependency.name))
        if version is None or not dependency.specifier.contains(version, prereleases=True):
            stale.append(f"{dependency} (locked: {version})")
    assert not stale, (
        "envs/airflow/requirements.txt does not satisfy pyproject.toml: regenerate it with the "
        "command in its header. " + ", ".join(stale)
    )
