"""``churnops evaluate``: a registered version's metrics file, on its holdout or a table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from churnops.cli import app
from churnops.config import Settings
from churnops.registry import get_version
from tests.conftest import home_tracking_uri
from tests.factories import make_customers

runner = CliRunner()
REPORTED = {"roc_auc", "pr_auc", "f1", "precision", "recall", "threshold", "version", "rows"}


@pytest.fixture
def registry_home(trained_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The session's registry (v1, champion) as this test's home; tmp_path as the cwd."""
    monkeypatch.setenv("CHURNOPS_HOME", str(trained_home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", home_tracking_uri(trained_home))
    monkeypatch.chdir(tmp_path)
    return Settings(home=trained_home, tracking_uri=home_tracking_uri(trained_home))


def evaluate(*args: str, code: int = 0) -> dict:
    result = runner.invoke(app, ["evaluate", *args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_the_champion_on_its_holdout_has_the_registered_metrics(registry_home: Settings) -> None:
    """On the run's own holdout the file repeats what training registered, to 1e-6."""
    printed = evaluate()
    written = json.loads(Path("metrics.json").read_text())
    assert set(written) == REPORTED
    assert printed == {"path": "metrics.json", "data": "its holdout", **written}
    registered = get_version(registry_home, alias="champion")
    assert written["version"] == int(registered.version)
    assert written["threshold"] == pytest.approx(registered.threshold, abs=1e-6)
    for name in REPORTED - {"threshold", "version", "rows"}:
        assert written[name] == pytest.approx(registered.holdout[name], abs=1e-6), name


def test_a_labelled_table_and_the_version_a_train_output_names(registry_home: Settings) -> None:
    make_customers(150, seed=11).to_csv("new.csv", index=False)
    Path("train.json").write_text(json.dumps({"model_version": "1", "family": "logistic"}))
    printed = evaluate("new.csv", "--trained", "train.json", "--out", "out/m.json")
    assert printed["data"] == "new.csv"
    assert printed["rows"] == 150
    assert printed["version"] == 1
    holdout = get_version(registry_home, version="1").holdout
    assert printed["roc_auc"] != pytest.approx(holdout["roc_auc"], abs=1e-9)  # not the holdout
    assert json.loads(Path("out/m.json").read_text())["rows"] == 150


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--version", "1", "--trained", "train.json"], 2, "not both"),
        (["--trained", "missing.json"], 2, "does not exist"),
        (["--trained", "list.json"], 2, "no model_version"),
        (["--version", "99"], 3, "99"),
        (["unlabelled.csv"], 1, "no 'churn' column"),
        (["odd-labels.csv"], 1, "rows [2]"),
    ],
    ids=["both", "no-file", "not-a-summary", "no-version", "no-label", "unknown-label"],
)
def test_what_cannot_be_evaluated_is_a_clear_error(
    registry_home: Settings, args: list[str], code: int, says: str
) -> None:
    """Each mistake exits with its error's code and a message naming it; no file is written."""
    Path("list.json").write_text("[1, 2]")
    table = make_customers(20, seed=12)
    table.drop(columns="churn").to_csv("unlabelled.csv", index=False)
    table.loc[1, "churn"] = "maybe"
    table.to_csv("odd-labels.csv", index=False)
    error = evaluate(*args, code=code)
    assert says in error["message"]
    assert not Path("metrics.json").exists()


def test_the_python_api_evaluates_what_the_cli_writes(registry_home: Settings) -> None:
    import churnops

    written = evaluate()
    on_holdout = churnops.evaluate(settings=registry_home)
    assert on_holdout == {k: v for k, v in written.items() if k not in ("path", "data")}
    table = make_customers(150, seed=11)
    assert churnops.evaluate(table, version=1, settings=registry_home)["rows"] == 150
