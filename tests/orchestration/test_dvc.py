"""``churnops init --dvc``: the real ``dvc`` runs the loop, caches it and shows its metrics.

DVC is not in the project's lock (its hydra-core pins antlr4 4.9, whose runtime cannot
read the 4.13 parsers Dagster ships), so it is found in its own environment: the repo's
``.dvc-venv`` (``make dvc-env``), the test venv, or PATH.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from churnops.cli import app
from churnops.orchestration.dvc import render_dvc_yaml, train_params
from tests.factories import make_customers

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
BUDGET = {"trials": "1", "cv_folds": "2", "families": "[logistic]", "ensemble": "false"}
STAGES = ["contract", "validate", "train", "evaluate"]
RAN = re.compile(r"^Running stage '([\w-]+)'", re.MULTILINE)


def dvc_program() -> str:
    """Return the ``dvc`` to run, or skip (locally) / fail (in CI) when there is none."""
    for candidate in (ROOT / ".dvc-venv" / "bin" / "dvc", VENV_BIN / "dvc"):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("dvc")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("dvc must be installed in CI: make dvc-env")
    pytest.skip("dvc is not installed (make dvc-env)")


def set_settings(config: Path, values: dict[str, str]) -> None:
    """Replace ``name: value`` lines of churnops.yaml, as a person editing it would."""
    text = config.read_text()
    for name, value in values.items():
        text, count = re.subn(rf"^{name}: .*$", f"{name}: {value}", text, flags=re.MULTILINE)
        assert count == 1, name
    config.write_text(text)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository holding a customer table, as the working directory."""
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    monkeypatch.chdir(repo)
    make_customers(240, seed=5).to_csv(repo / "data" / "customers.csv", index=False)
    return repo


def init(*args: str, code: int = 0) -> dict:
    result = CliRunner().invoke(app, ["init", "data/customers.csv", "--target", "churn", *args])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


@pytest.mark.integration
def test_dvc_repro_runs_caches_and_reruns_only_what_a_setting_changes(
    project: Path, tmp_path: Path
) -> None:
    """dvc repro runs the four stages; again, none; after a train setting, train + evaluate."""
    dvc = dvc_program()
    env = {
        "PATH": f"{VENV_BIN}{os.pathsep}/usr/local/bin{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": str(tmp_path / "home"),  # no user config of git or DVC
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(tmp_path / "dvc-site"),
        "LANG": "C.UTF-8",
    }

    def run(*args: str) -> str:
        done = subprocess.run(
            args, cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        return done.stdout

    run("git", "init", "-q")
    init("--id", "customer_id", "--dvc", "--json")
    set_settings(project / "churnops.yaml", BUDGET)
    run(dvc, "init", "-q")

    first = run(dvc, "repro")
    assert RAN.findall(first) == STAGES
    assert json.loads(Path("validation.json").read_text())["ok"] is True
    trained = json.loads(Path("train.json").read_text())
    assert trained["model_version"] == "1"
    metrics = json.loads(Path("metrics.json").read_text())
    assert metrics["version"] == 1
    assert metrics["roc_auc"] == pytest.approx(trained["holdout"]["roc_auc"], abs=1e-6)
    contract_written = Path("contract.json").stat().st_mtime_ns

    again = run(dvc, "repro")
    assert RAN.findall(again) == []
    assert "Data and pipelines are up to date." in again

    set_settings(project / "churnops.yaml", {"trials": "2"})
    assert json.loads(run(dvc, "status", "--json")) == {
        "train": [{"changed deps": {"churnops.yaml": {"trials": "modified"}}}]
    }
    assert RAN.findall(run(dvc, "repro")) == ["train", "evaluate"]
    assert Path("contract.json").stat().st_mtime_ns == contract_written
    retrained = json.loads(Path("metrics.json").read_text())
    assert retrained["version"] == 2  # the version train registered, not the champion (v1)

    shown = json.loads(run(dvc, "metrics", "show", "--json"))
    assert shown[""]["data"]["metrics.json"]["data"] == retrained


def test_dvc_yaml_tracks_what_each_stage_reads_and_writes() -> None:
    """Each stage's deps are the outs before it; train alone reads the settings."""
    stages = yaml.safe_load(render_dvc_yaml("data/my table.csv", "churn", None))["stages"]
    assert list(stages) == STAGES
    assert stages["contract"]["deps"] == ["data/my table.csv"]
    assert stages["validate"]["deps"] == ["data/my table.csv", "contract.json"]
    assert stages["train"]["deps"] == ["data/my table.csv", "contract.json", "validation.json"]
    assert stages["evaluate"]["deps"] == ["train.json"]
    assert [name for name, s in stages.items() if "params" in s] == ["train"]
    assert stages["evaluate"]["metrics"] == [{"metrics.json": {"cache": False}}]
    assert "'data/my table.csv'" in stages["train"]["cmd"]  # quoted for the shell
    assert "--id" not in stages["contract"]["cmd"]
    tracked = stages["train"]["params"][0]["churnops.yaml"]
    assert tracked == train_params()
    assert {"trials", "cv_folds", "families", "metric", "threshold_strategy"} <= set(tracked)
    assert not {"serve_port", "min_delta", "model_name"} & set(tracked)


def test_init_dvc_sets_the_tracked_settings_and_keeps_files_without_force(
    project: Path,
) -> None:
    """DVC refuses params missing from the file, so --dvc writes them set, at their defaults."""
    result = init("--dvc", "--json")
    assert result["files"] == ["churnops.yaml", "dvc.yaml"]
    loaded = yaml.safe_load(Path("churnops.yaml").read_text())
    assert set(train_params()) <= set(loaded)
    assert "serve_port" not in loaded  # the rest stays commented out
    Path("dvc.yaml").write_text("stages: {}\n")
    Path("churnops.yaml").unlink()
    error = init("--dvc", "--json", code=2)
    assert error["paths"] == ["dvc.yaml"]
    assert not Path("churnops.yaml").exists()  # all or nothing
    init("--dvc", "--force", "--json")
    assert "train" in yaml.safe_load(Path("dvc.yaml").read_text())["stages"]
    error = init("--dvc", "--output", "conf/settings.yaml", "--json", code=2)
    assert "churnops.yaml" in error["message"]
