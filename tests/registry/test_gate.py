"""``churnops models gate``: the release ships the champion only if it meets the floors and
accepts exactly the records the reviewed contract describes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from churnops.cli import app
from churnops.config import Settings
from churnops.data.contract import DataContract
from churnops.registry import contract_differences, get_version, load_model
from tests.conftest import home_tracking_uri

pytestmark = pytest.mark.integration

runner = CliRunner()


@pytest.fixture
def on_trained(trained_home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point the CLI at the session's trained home (v1 champion)."""
    monkeypatch.setenv("CHURNOPS_HOME", str(trained_home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", home_tracking_uri(trained_home))
    return Settings(home=trained_home, tracking_uri=home_tracking_uri(trained_home))


@pytest.fixture
def champion_contract(on_trained: Settings) -> DataContract:
    """The contract inside the champion's artifact (what the reviewed file should hold)."""
    return load_model(on_trained).model.contract


def gate(*args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["models", "gate", *args, "--json"])
    return result.exit_code, json.loads(result.stdout)


def test_passes_at_the_champions_metrics_and_contract(
    on_trained: Settings, champion_contract: DataContract, tmp_path: Path
) -> None:
    """Floors at the recorded holdout values and the champion's own contract: exit 0."""
    holdout = get_version(on_trained, alias="champion").holdout
    contract = champion_contract.save(tmp_path / "contract.json")
    code, body = gate(
        "--min-roc-auc",
        f"{holdout['roc_auc'] - 1e-6:.6f}",
        "--min-f1",
        f"{holdout['f1'] - 1e-6:.6f}",
        "--contract",
        str(contract),
    )
    assert code == 0, body
    assert body["passed"] is True
    assert body["version"] == "1"
    assert body["contract_checked"] is True
    assert body["failures"] == []


def test_a_floor_above_the_holdout_metric_fails_naming_both_values(on_trained: Settings) -> None:
    """The champion's ROC AUC under the floor: exit 1, the metric, its value and the floor."""
    roc_auc = get_version(on_trained, alias="champion").holdout["roc_auc"]
    floor = min(roc_auc + 0.01, 1.0)
    code, body = gate("--min-roc-auc", f"{floor:.4f}", "--min-pr-auc", "0")
    assert code == 1
    assert body["passed"] is False
    assert body["failures"] == [f"holdout roc_auc {roc_auc:.4f} is below the floor {floor:.4f}"]
    result = runner.invoke(app, ["models", "gate", "--min-roc-auc", f"{floor:.4f}"])
    assert result.exit_code == 1
    assert "failed" in result.stdout
    assert f"below the floor {floor:.4f}" in result.stdout


def test_a_contract_the_champion_does_not_match_fails_with_each_difference(
    on_trained: Settings, champion_contract: DataContract, tmp_path: Path
) -> None:
    """A dropped column, a category the champion refuses and a changed policy are each
    named; the floors alone would have passed."""
    data = json.loads(champion_contract.model_dump_json())
    data["columns"] = [c for c in data["columns"] if c["name"] != "tenure"]
    contract = next(c for c in data["columns"] if c["name"] == "contract")
    contract["categories"]["Decade-long"] = 0.01
    contract["policy"]["unseen"] = "ignore"
    path = tmp_path / "contract.json"
    path.write_text(json.dumps(data))
    code, body = gate("--min-roc-auc", "0.5", "--contract", str(path))
    assert code == 1
    assert body["failures"] == [
        "contract: column 'tenure' is not in the expected contract",
        "contract: column 'contract': refuses categories 'Decade-long'",
        "contract: column 'contract': policy {'unseen': 'reject'}, expected "
        "{'missing': 'reject', 'text': 'parse', 'unseen': 'ignore', 'out_of_range': 'reject'}",
    ]


def test_a_retrain_on_new_data_of_the_same_shape_still_matches(
    champion_contract: DataContract,
) -> None:
    """Statistics and numeric ranges are re-derived by every training table: a contract
    that differs only in them matches (else every retrain would fail the release)."""
    data = json.loads(champion_contract.model_dump_json())
    data.update(rows=data["rows"] + 100, digest="0" * 16, positive_rate=0.5)
    for column in data["columns"]:
        if column["kind"] == "numeric" and column["role"] == "feature":
            column.update(min=-1.0, max=1e6, upper=2e6, mean=3.0)
        if column["categories"]:
            column["categories"] = {k: 0.5 for k in column["categories"]}
    retrained = DataContract.model_validate(data)
    assert contract_differences(retrained, champion_contract) == []
    data["target"] = "left"
    assert contract_differences(DataContract.model_validate(data), champion_contract) == [
        "target column 'churn', expected 'left'"
    ]


def test_nothing_to_check_is_a_usage_error(on_trained: Settings) -> None:
    """A gate with no floor and no contract would pass anything: exit 2, saying what to give."""
    result = runner.invoke(app, ["models", "gate"])
    assert result.exit_code == 2
    assert "--min-roc-auc" in result.output


def test_no_champion_exits_3(tmp_path: Path) -> None:
    """An empty registry has nothing to release: the registry's exit code, not a pass."""
    result = runner.invoke(app, ["models", "gate", "--min-roc-auc", "0.5"])
    assert result.exit_code == 3
    assert "champion" in result.output


def test_models_alone_still_lists_the_versions(on_trained: Settings) -> None:
    """``churnops models`` became a group for ``gate``; without a subcommand it lists."""
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    assert [v["version"] for v in json.loads(result.stdout)["versions"]] == ["1"]
