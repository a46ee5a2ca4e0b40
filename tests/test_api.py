"""The Python API: docs/python-api.md's code run as written, and what each call promises.

The page's notebook walk-through is executed once (it trains a small model into its own
home); the tests then check what it produced, so the page cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import churnops
from churnops.errors import ConfigError, DataValidationError, ModelNotFoundError
from churnops.monitoring import MonitoringResult
from churnops.scoring import Predictor
from tests.test_client import live_server

DOC = Path(__file__).parents[1] / "docs" / "python-api.md"


def doc_blocks() -> list[str]:
    """Return the page's ```python blocks, in order."""
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(), re.DOTALL | re.MULTILINE)


def doc_block(containing: str) -> str:
    """Return the one ```python block of the page that contains ``containing``."""
    (block,) = [b for b in doc_blocks() if containing in b]
    return block


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Run a docs block as a reader would: in a fresh folder, no CHURNOPS_* variables."""
    monkeypatch.delenv("CHURNOPS_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Run the walk-through block in a fresh folder; return its variables."""
    folder = tmp_path_factory.mktemp("notebook")
    with pytest.MonkeyPatch.context() as patch:
        for key in list(os.environ):
            if key.startswith(("CHURNOPS_", "MLFLOW_")):
                patch.delenv(key)
        patch.chdir(folder)
        variables: dict[str, Any] = {}
        exec(compile(doc_block("churnops.train("), str(DOC), "exec"), variables)
        # Later tests run elsewhere: pin the walk-through's relative home to its folder.
        settings = variables["settings"]
        variables["settings"] = settings.model_copy(update={"home": folder / settings.home})
        variables["folder"] = folder
        yield variables


def test_walkthrough_contract_validation_and_training(notebook: dict[str, Any]) -> None:
    contract, report, result = notebook["contract"], notebook["report"], notebook["result"]
    assert isinstance(contract, churnops.DataContract)
    assert (contract.target, contract.id) == ("churned", "account_id")
    assert contract.feature_names == [
        "plan",
        "months_active",
        "logins_30d",
        "tickets_30d",
        "autopay",
    ]
    assert report.ok
    assert report.errors == []
    assert isinstance(result, churnops.TrainResult)
    assert (result.version, result.family) == ("1", "logistic")
    assert set(result.aliases) == {"champion", "challenger"}  # the first version
    assert 0.5 < result.metrics["roc_auc"] <= 1.0
    assert set(result.cv) == set(result.metrics)
    assert 0.0 < result.threshold < 1.0
    assert json.loads(json.dumps(result.to_dict()))["run_id"] == result.run_id
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.version = "2"  # type: ignore[misc]


def test_validate_reports_problems_and_leaves_the_table_alone(notebook: dict[str, Any]) -> None:
    accounts = notebook["accounts"].head(20).copy()
    accounts.loc[3, "months_active"] = "soon"
    before = accounts.copy()
    report = churnops.validate(accounts, notebook["contract"])
    assert not report.ok
    assert [(e.check, e.column, e.rows) for e in report.errors] == [
        ("non_numeric", "months_active", [4])  # rows count from 1
    ]
    assert "months_active" in report.summary()
    pd.testing.assert_frame_equal(accounts, before)
    unlabelled = notebook["accounts"].drop(columns="churned")
    assert not churnops.validate(unlabelled, notebook["contract"]).ok
    assert churnops.validate(unlabelled, notebook["contract"], scoring=True).ok


def test_predict_and_explain_agree_with_the_api_scoring_path(notebook: dict[str, Any]) -> None:
    model, accounts = notebook["model"], notebook["accounts"]
    sample = accounts.iloc[10:30].set_index(pd.Index(range(100, 120), name="row"))
    scores = model.predict(sample)
    assert list(scores.columns) == ["account_id", "probability", "churn"]
    assert scores.index.equals(sample.index)
    assert scores["account_id"].tolist() == sample["account_id"].tolist()
    assert (scores["churn"] == (scores["probability"] >= model.threshold)).all()
    # The API's record path (RecordCodec + FastScorer) gives the same numbers.
    predictor = Predictor.from_registry(notebook["settings"])
    records = sample.drop(columns="churned").to_dict("records")
    probabilities, rows = predictor.score_many(records)
    np.testing.assert_allclose(scores["probability"], probabilities, rtol=0, atol=1e-12)

    reasons = model.explain(sample, top=2)
    assert list(reasons.columns) == ["account_id", "rank", "feature", "value", "contribution"]
    assert reasons.index.tolist() == [i for i in sample.index for _ in range(2)]
    assert reasons["rank"].tolist() == [1, 2] * len(sample)
    expected = [r for row in predictor.reasons(rows, top=2) for r in row]
    assert reasons[["feature", "value", "contribution"]].to_dict("records") == expected


def test_rows_that_break_the_contract_are_refused_by_name(notebook: dict[str, Any]) -> None:
    model, accounts = notebook["model"], notebook["accounts"]
    odd = accounts.head(4).assign(plan=["basic", "gold", "pro", "platinum"])
    with pytest.raises(DataValidationError) as caught:
        model.predict(odd)
    message = caught.value.message
    assert "'plan': 2 row(s): unknown category" in message
    assert "'gold'" in message
    assert "'platinum'" in message
    assert "rows 2, 4" in message  # counted from 1: the second and fourth rows
    assert caught.value.details["issues"][0]["rows"] == [2, 4]
    with pytest.raises(DataValidationError, match=r"Missing required column\(s\): plan"):
        model.explain(accounts.drop(columns="plan").head(3))


def test_load_model_by_alias_or_version(notebook: dict[str, Any]) -> None:
    settings = notebook["settings"]
    by_number = churnops.load_model(1, settings=settings)
    by_alias = churnops.load_model("challenger", settings=settings)
    assert by_number.version == by_alias.version == "1"
    assert by_number.family == "logistic"
    assert by_number.metrics == notebook["result"].metrics
    assert repr(by_number).startswith("Model('churn-model', version='1', family='logistic'")
    with pytest.raises(ModelNotFoundError):
        churnops.load_model("7", settings=settings)


def test_score_and_monitor_from_the_walkthrough(notebook: dict[str, Any]) -> None:
    run, check = notebook["run"], notebook["check"]
    assert run["status"] == "succeeded"
    assert run["scoring_date"] == "2026-01-05"
    assert (run["rows_scored"], run["rows_rejected"]) == (600, 0)
    assert isinstance(check, MonitoringResult)
    assert check.verdict in ("drift", "retrain")
    assert "logins_30d" in check.drift.drifted_features
    # A file works as well as a frame, and is named by its path.
    path = notebook["folder"] / "later.parquet"
    notebook["later"].to_parquet(path)
    from_file = churnops.monitor(
        path, reference=notebook["accounts"], settings=notebook["settings"]
    )
    assert from_file.current_name == str(path)
    assert "logins_30d" in from_file.drift.drifted_features


def test_bad_arguments_fail_before_any_work(notebook: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="target"):
        churnops.train(notebook["accounts"])
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        churnops.score("accounts.csv", date="05/01/2026", settings=notebook["settings"])


def test_docs_client_block_runs_against_a_real_server(
    notebook: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from churnops.serving.auth import create_key

    settings = notebook["settings"].model_copy(
        update={"serve_audit": False, "serve_access_log": False, "serve_key_cache_seconds": 0.0}
    )
    key = create_key(settings, "notebook", "scorer")["key"]
    with live_server(settings) as url:
        monkeypatch.setenv("CHURNOPS_API_URL", url)
        monkeypatch.setenv("CHURNOPS_API_KEY", key)
        exec(compile(doc_block("Client("), str(DOC), "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "True"
    assert printed[-1].startswith("422 {'field': 'plan'")


def test_docs_errors_and_settings_blocks_run(
    clean_env: Path, capsys: pytest.CaptureFixture
) -> None:
    exec(compile(doc_block("ContractError"), str(DOC), "exec"), {})
    assert "Target column 'cancelled' not found" in capsys.readouterr().out
    exec(compile(doc_block("trials=30"), str(DOC), "exec"), {})
    tracking, home = capsys.readouterr().out.splitlines()
    assert tracking == f"sqlite:///{clean_env / '.churnops-notebook' / 'mlflow.db'}"
    assert home == ".churnops"


def test_every_docs_block_is_tested() -> None:
    assert len(doc_blocks()) == 4  # walk-through, errors, settings, client: each run above


def test_import_churnops_is_light_and_names_resolve() -> None:
    """`import churnops` and its light names load no pandas, MLflow, scikit-learn or httpx."""
    probe = (
        "import sys, churnops\n"
        "churnops.Settings, churnops.ChurnopsError, churnops.__version__\n"
        "heavy = {'pandas', 'numpy', 'mlflow', 'sklearn', 'httpx', 'churnops.training'}\n"
        "print(sorted(m for m in sys.modules if m in heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert churnops.__version__ == version("churnops")
    for name in churnops.__all__:
        assert getattr(churnops, name) is not None
        assert name in dir(churnops)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        churnops.nope  # noqa: B018
