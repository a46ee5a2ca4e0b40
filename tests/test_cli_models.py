"""`churnops train` prints only its JSON and our progress; `churnops models` fits 80 columns."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from rich.console import Console

from churnops.cli.models import versions_table
from churnops.registry.models import RegisteredVersion
from tests.factories import make_customers

PROGRESS_LINE = re.compile(r"\S.*━+ +\d+/\d+ +\d+:\d\d:\d\d")


def churnops(home: Path, *args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a fresh process (what a user's terminal shows)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CHURNOPS_", "MLFLOW_"))},
        "CHURNOPS_HOME": str(home),
        "COLUMNS": str(columns),
    }
    return subprocess.run(
        [sys.executable, "-m", "churnops", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )


@pytest.mark.integration
def test_train_json_is_alone_on_stdout_and_stderr_is_only_progress(tmp_path: Path) -> None:
    """No MLflow warning (type hints), "Registered model" line or log text reaches the user."""
    data = tmp_path / "customers.csv"
    make_customers(300, seed=4).to_csv(data, index=False)
    done = churnops(
        tmp_path / "home",
        "train",
        str(data),
        "--target",
        "churn",
        "--id",
        "customer_id",
        "--trials",
        "1",
        "--families",
        "logistic",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["model_version"] == "1"  # the whole of stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert [line for line in lines if not PROGRESS_LINE.fullmatch(line.strip())] == []
    assert {line.split("  ")[0] for line in lines} >= {"read data", "validate data"}


@pytest.mark.integration
def test_models_fits_80_columns(trained_home: Path) -> None:
    """At COLUMNS=80 no line is wider than 80 and the version, aliases and metrics show whole."""
    done = churnops(trained_home, "models", columns=80)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    (row,) = [line for line in lines if line.split()[:1] == ["1"]]
    assert re.search(r"challenger +\w+ +0\.\d{4} +0\.\d{4} +0\.\d{4}", row)
    assert any(line.split() == ["champion"] for line in lines)


def _version(number: int, aliases: list[str]) -> RegisteredVersion:
    metrics = {"roc_auc": 0.84321, "pr_auc": 0.65432, "f1": 0.61234}
    created = "2026-11-29T15:40:00+00:00"
    return RegisteredVersion("m", str(number), "r", aliases, "lightgbm", 0.3125, metrics, created)


@pytest.mark.parametrize("width", [80, 100, 140])
def test_versions_table_gives_way_on_low_value_columns_only(width: int) -> None:
    """Many versions, several and long aliases, a long model name: nothing key is cut."""
    versions = [
        _version(12, ["challenger", "champion", "retention-campaign-2026-q4"]),
        *(_version(n, []) for n in range(11, 0, -1)),
    ]
    name = "churn-model-for-the-retention-team-of-the-consumer-subscriptions-business-unit"
    console = Console(file=io.StringIO(), width=width)
    console.print(versions_table(versions, name, width))
    text = console.file.getvalue()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    for value in ("challenger", "champion", "retention-campaign-2026-q4", "lightgbm"):
        assert value in text
    assert all(re.search(rf"^ *{n} .*0\.8432 +0\.6543 +0\.6123", text, re.M) for n in range(1, 13))
    assert name in "".join(text.split())  # the title folds, it is not cut
    local = datetime.fromisoformat(versions[0].created).astimezone()
    if width == 140:  # room for everything: the threshold and the local time too
        assert "0.312" in text
        assert local.strftime("%Y-%m-%d %H:%M") in text
