"""The registered model works with MLflow's own server: `mlflow models serve` answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from churnops.config import Settings
from tests.conftest import free_port
from tests.factories import make_customers


@pytest.mark.integration
def test_mlflow_models_serve_answers_with_probabilities(trained_home: Path) -> None:
    """`mlflow models serve -m models:/churn-model@champion` returns probabilities on 127.0.0.1."""
    settings = Settings(home=trained_home)
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": settings.resolved_tracking_uri,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
    }
    proc = subprocess.Popen(
        [
            f"{bin_dir}/mlflow",
            "models",
            "serve",
            "-m",
            "models:/churn-model@champion",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1)
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                time.sleep(0.5)
        records = make_customers(3, seed=12).drop(columns="churn").to_dict("records")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps({"dataframe_records": records}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            body = json.loads(urllib.request.urlopen(request, timeout=30).read())
        except urllib.error.HTTPError as exc:  # show MLflow's reason, not just the status
            pytest.fail(f"{exc.code}: {exc.read().decode()[:2000]}")
        predictions = body["predictions"]
        assert [p["customer_id"] for p in predictions] == [r["customer_id"] for r in records]
        assert all(0.0 < p["probability"] < 1.0 for p in predictions)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)
