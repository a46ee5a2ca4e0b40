"""Sources, reports and MLflow artifacts on S3-compatible storage, against a real S3 API.

Every command runs through the CLI with only the standard AWS variables pointing at a
moto server on loopback (see ``conftest.py``); the bucket is then read back with boto3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from churnops.cli import app
from churnops.config import get_settings
from tests.conftest import free_port
from tests.data.conftest import S3Server, aws_env
from tests.factories import make_customers

pytestmark = pytest.mark.integration

runner = CliRunner()
# The smallest training budget: one family, one trial, three folds, no blend.
TINY_BUDGET = {
    "CHURNOPS_TRIALS": "1",
    "CHURNOPS_CV_FOLDS": "3",
    "CHURNOPS_FAMILIES": '["logistic"]',
    "CHURNOPS_ENSEMBLE": "false",
}


def cli(*args: str, code: int = 0) -> dict[str, Any]:
    """Run ``churnops ARGS --json`` in process; check the exit code; return the JSON."""
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return json.loads(result.stdout)


def keys(server: S3Server, bucket: str, prefix: str = "") -> list[str]:
    """Return every key under ``prefix`` in ``bucket``."""
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def upload(server: S3Server, bucket: str, key: str, frame: pd.DataFrame, tmp: Path) -> str:
    """Write ``frame`` as the key's format, put it in the bucket, return its s3:// URL."""
    local = tmp / Path(key).name
    if local.suffix == ".csv":
        frame.to_csv(local, index=False)
    else:
        frame.to_parquet(local, index=False)
    server.client().upload_file(str(local), bucket, key)
    return f"s3://{bucket}/{key}"


@dataclass(frozen=True)
class Trained:
    """A home whose champion was trained from a bucket, with its artifacts in that bucket."""

    home: Path
    bucket: str
    summary: dict[str, Any]
    today: str  # s3:// URL of a batch to score and monitor


@pytest.fixture(scope="module")
def trained(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """`churnops train s3://.../customers.parquet` once, MLflow artifacts to s3://.../mlflow."""
    tmp = tmp_path_factory.mktemp("s3-trained")
    bucket = s3_server.bucket()
    source = upload(s3_server, bucket, "customers.parquet", make_customers(400, seed=3), tmp)
    today = upload(s3_server, bucket, "today.parquet", make_customers(300, seed=4), tmp)
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("CHURNOPS_")]:
            patch.delenv(name)
        aws_env(patch, s3_server, tmp)
        patch.setenv("CHURNOPS_HOME", str(tmp / "home"))
        patch.setenv("CHURNOPS_ARTIFACT_LOCATION", f"s3://{bucket}/mlflow")
        for name, value in TINY_BUDGET.items():
            patch.setenv(name, value)
        patch.chdir(tmp)  # metrics.json lands here
        get_settings.cache_clear()
        summary = cli("train", source, "--target", "churn", "--id", "customer_id")
    get_settings.cache_clear()
    return Trained(tmp / "home", bucket, summary, today)


@pytest.fixture
def home(trained: Trained, s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> Trained:
    """This test runs in the trained home, with the AWS variables on the server."""
    monkeypatch.setenv("CHURNOPS_HOME", str(trained.home))
    get_settings.cache_clear()
    return trained


def test_train_from_a_bucket_keeps_its_artifacts_in_the_bucket(home: Trained, s3: S3Server) -> None:
    """Training on s3://…/customers.parquet registers v1, and its model files are objects."""
    assert home.summary["model_version"] == "1"
    assert home.summary["rows"]["train"] + home.summary["rows"]["holdout"] == 400
    stored = keys(s3, home.bucket, "mlflow/")
    assert any(k.endswith("/MLmodel") for k in stored), stored
    assert any("/scoring/" in k for k in stored), stored
    assert not (home.home / "mlartifacts").exists()  # nothing went to the local default


def test_score_from_a_bucket_writes_the_store(home: Trained) -> None:
    """`churnops score s3://…/today.parquet` scores every row into churn_scores."""
    run = cli("score", home.today, "--date", "2026-11-02")
    assert run["source"] == home.today
    assert run["rows_scored"] == 300
    engine = sa.create_engine(get_settings().resolved_database_url)
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT COUNT(*) FROM churn_scores WHERE scoring_date = '2026-11-02'")
        ).scalar()
    engine.dispose()
    assert stored == 300


def test_csv_in_a_bucket_is_scored_and_validated(
    home: Trained, s3: S3Server, tmp_path: Path
) -> None:
    """A CSV object is read like a CSV file: chunked by `score`, whole by `validate`."""
    frame = make_customers(120, seed=6)
    url = upload(s3, home.bucket, "batches/day.csv", frame, tmp_path)
    run = cli("score", url, "--date", "2026-11-03")
    assert (run["rows_in"], run["rows_scored"]) == (120, 120)
    report = cli("validate", url, "--target", "churn", "--id", "customer_id")
    assert report["ok"]
    assert report["rows"] == 120


def test_monitor_writes_its_report_to_the_bucket(
    home: Trained, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With reports_location on a bucket, `monitor` uploads its HTML report there."""
    monkeypatch.setenv("CHURNOPS_REPORTS_LOCATION", f"s3://{home.bucket}/reports/")
    summary = cli("monitor", home.today)
    report = summary["report"]
    assert report.startswith(f"s3://{home.bucket}/reports/monitor-")
    key = report.removeprefix(f"s3://{home.bucket}/")
    assert keys(s3, home.bucket, "reports/") == [key]
    stored = s3.client().get_object(Bucket=home.bucket, Key=key)
    assert stored["ContentType"] == "text/html"
    text = stored["Body"].read().decode()
    assert text.lstrip().lower().startswith("<!doctype html")
    assert home.today in text  # the run's own content: what was monitored
    assert f"Verdict: {summary['verdict'].upper()}" in text
    assert summary["mlflow_run_id"]  # and logged to MLflow beside it


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("missing bucket", "Bucket 'no-such-bucket-for-churnops' not found"),
        ("missing object", "No object at"),
        ("wrong credentials", "was refused"),
        ("unreachable endpoint", "Cannot reach the S3 endpoint"),
    ],
)
def test_storage_errors_name_the_url(
    case: str, needle: str, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each failure a user can cause exits 1 with a message naming the URL, no traceback."""
    bucket = s3.bucket()
    url = f"s3://{bucket}/customers.parquet"
    if case == "missing bucket":
        url = "s3://no-such-bucket-for-churnops/customers.parquet"
    elif case == "wrong credentials":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    elif case == "unreachable endpoint":
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
    error = cli("validate", url, "--target", "churn", code=1)
    assert error["error"] == "DataSourceError"
    assert needle in error["message"]
    assert url in error["message"]


def test_a_report_bound_for_a_missing_bucket_fails_before_the_work(home: Trained) -> None:
    """`monitor --report s3://missing/…` stops at once with the bucket named."""
    url = "s3://no-such-bucket-for-churnops/report.html"
    error = cli("monitor", home.today, "--report", url, code=1)
    assert "Bucket 'no-such-bucket-for-churnops' not found" in error["message"]


def test_an_artifact_bucket_that_is_missing_stops_training_before_it_starts(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No minutes of training before the registry finds nowhere to put the model."""
    from churnops.config import Settings
    from churnops.errors import DataSourceError
    from churnops.stages import train_and_register

    settings = Settings(
        home=tmp_path / "home", artifact_location="s3://no-such-bucket-for-churnops/mlflow"
    )
    monkeypatch.setattr("churnops.training.run.train", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(DataSourceError, match="no-such-bucket-for-churnops"):
        train_and_register(make_customers(50, seed=2), settings, target="churn")


def test_a_process_reading_a_bucket_exits_cleanly(s3: S3Server, tmp_path: Path) -> None:
    """A real `churnops` process reads an object and exits 0 (pyarrow's S3 shuts down)."""
    bucket = s3.bucket()
    url = upload(s3, bucket, "c.parquet", make_customers(80, seed=7), tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "churnops", "validate", url, "--target", "churn", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CHURNOPS_HOME": str(tmp_path / "home")},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 80


def test_an_object_has_the_digest_of_the_same_file(s3: S3Server, tmp_path: Path) -> None:
    """Digests are of content: the pipeline's source and a batch run's bytes match a copy."""
    from churnops.batch.sources import open_source
    from churnops.config import Settings
    from churnops.orchestration.steps import read_source

    bucket = s3.bucket()
    url = upload(s3, bucket, "week/customers.parquet", make_customers(60, seed=8), tmp_path)
    local = tmp_path / "customers.parquet"
    settings = Settings(home=tmp_path / "home", pipeline_source=url)
    remote_source, local_source = read_source(settings), read_source(settings, local)
    assert remote_source.path == url  # the URL survives as text (no Path folding "//")
    assert remote_source.digest == local_source.digest
    assert open_source(url).digest == open_source(local).digest


def test_dagster_watches_an_object_in_a_bucket(s3: S3Server, tmp_path: Path) -> None:
    """The source-change sensor's marker follows an object, and Dagster keeps its URL."""
    from churnops.orchestration.definitions import ChurnopsResource, source_fingerprint

    bucket = s3.bucket()
    url = upload(s3, bucket, "watched.parquet", make_customers(40, seed=3), tmp_path)
    assert ChurnopsResource(source=url).settings().pipeline_source == url
    first = source_fingerprint(url)
    assert first is not None
    upload(s3, bucket, "watched.parquet", make_customers(80, seed=4), tmp_path)
    assert source_fingerprint(url) not in (None, first)
    assert source_fingerprint(f"s3://{bucket}/missing.parquet") is None


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL", "MLFLOW_S3_ENDPOINT_URL"])
def test_each_endpoint_variable_reaches_the_server(
    variable: str, s3: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The endpoint may come from AWS_ENDPOINT_URL or MLflow's own variable alone."""
    from churnops.data.sources import read_table

    bucket = s3.bucket()
    url = upload(s3, bucket, "c.csv", make_customers(30, seed=9), tmp_path)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    monkeypatch.setenv(variable, s3.url)
    assert len(read_table(url)) == 30
