"""A training run's logged tables are read in place from a SQL store's local artifacts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from churnops.config import Settings
from churnops.data.sources import read_parquet
from churnops.registry.models import HOLDOUT_ARTIFACT, REFERENCE_ARTIFACT, load_run_frame
from tests.conftest import home_tracking_uri

pytestmark = pytest.mark.integration


def test_run_frames_are_read_without_importing_mlflow(trained_home: Path) -> None:
    code = f"""
import json, sys
from churnops.config import Settings
from churnops.registry import get_version
from churnops.registry.models import REFERENCE_ARTIFACT, load_run_frame
s = Settings(home={str(trained_home)!r}, tracking_uri={home_tracking_uri(trained_home)!r})
frame = load_run_frame(s, get_version(s, alias="champion").run_id, REFERENCE_ARTIFACT)
print(json.dumps({{"rows": len(frame), "mlflow": "mlflow" in sys.modules}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"rows": result["rows"], "mlflow": False}
    assert result["rows"] > 0


def test_the_in_place_read_equals_mlflows_download(trained_home: Path) -> None:
    import mlflow

    from churnops.registry import get_version
    from churnops.registry.tracking import configure

    settings = Settings(home=trained_home, tracking_uri=home_tracking_uri(trained_home))
    run_id = get_version(settings, alias="champion").run_id
    configure(settings)
    for artifact in (HOLDOUT_ARTIFACT, REFERENCE_ARTIFACT):
        downloaded = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact)
        assert load_run_frame(settings, run_id, artifact).equals(read_parquet(downloaded))
