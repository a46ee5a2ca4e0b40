"""Training on Spark gives the local model's quality and the very artifact a local run registers.

One logistic training on the demo table (local[2], 1 trial, 2 folds) is shared by the
module; the XGBoost path runs once on a small table. Every training uses the module's one
Spark session (a session costs ~10-20 s to start), as it would a notebook's.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from churnops.config import Settings
from tests.conftest import home_tracking_uri
from tests.factories import make_customers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java (java not on PATH)"),
]


@pytest.fixture(scope="module", autouse=True)
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One local Spark session for the module; training uses it and leaves it running."""
    from churnops.batch.spark import spark_session

    session = spark_session("local[2]", tmp_path_factory.mktemp("spark-scratch"), "1200m")
    yield session
    session.stop()


def test_the_driver_memory_setting_reaches_the_jvm(spark: Any) -> None:
    """CHURNOPS_SPARK_DRIVER_MEMORY sizes the heap of the JVM the session starts."""
    assert spark.sparkContext.getConf().get("spark.driver.memory") == "1200m"
    heap = spark.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory()
    assert 1000 * 2**20 < heap <= 1200 * 2**20
    with pytest.raises(ValueError, match="spark_driver_memory"):
        Settings(spark_driver_memory="lots")


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo table (7,043 customers) as one Parquet file."""
    from churnops.data.demo import load_demo

    path = tmp_path_factory.mktemp("spark-data") / "demo.parquet"
    load_demo().to_parquet(path, index=False)
    return path


@pytest.fixture(scope="module")
def spark_trained(tmp_path_factory: pytest.TempPathFactory, demo_file: Path) -> dict[str, Any]:
    """A home whose only version was trained on Spark, the summary, and a local training."""
    from churnops.data.sources import read_parquet
    from churnops.stages import train_and_register
    from churnops.training.run import train

    home = tmp_path_factory.mktemp("spark-home") / "home"
    settings = Settings(
        home=home, trials=1, cv_folds=2, tracking_uri=home_tracking_uri(home), ensemble=False
    )
    summary = train_and_register(
        demo_file,
        settings,
        target="churn",
        id_column="customer_id",
        families=["logistic"],
        engine="spark",
    )
    local = train(
        read_parquet(demo_file),
        settings,
        target="churn",
        id_column="customer_id",
        families=["logistic"],
    )
    return {"settings": settings, "summary": summary, "local": local}


def test_spark_and_local_logistic_agree_on_the_same_holdout(spark_trained: dict) -> None:
    """Same split, same tuned C: holdout ROC-AUC within 0.005 of the local model's."""
    from churnops import registry

    summary, local = spark_trained["summary"], spark_trained["local"]
    assert summary["engine"] == "spark"
    assert summary["family"] == "logistic"
    assert summary["params"] == local.params  # the same Optuna trial
    assert summary["rows"] == {"train": len(local.train_frame), "holdout": len(local.holdout_frame)}
    assert abs(summary["holdout"]["roc_auc"] - local.holdout["roc_auc"]) <= 0.005
    loaded = registry.load_model(spark_trained["settings"])
    held = registry.load_run_frame(spark_trained["settings"], loaded.version.run_id)
    assert sorted(held["customer_id"]) == sorted(local.holdout_frame["customer_id"])


def test_the_spark_contract_is_the_local_contract(spark_trained: dict) -> None:
    """Every field of every column is the local inference's (mean and std to 1e-12)."""
    from churnops import registry

    spark = registry.load_model(spark_trained["settings"]).model.contract.model_dump()
    local = spark_trained["local"].contract.model_dump()
    for key in ("digest", "created_at"):
        spark.pop(key), local.pop(key)
    spark_columns, local_columns = spark.pop("columns"), local.pop("columns")
    assert spark == local
    assert [c["name"] for c in spark_columns] == [c["name"] for c in local_columns]
    for ours, theirs in zip(spark_columns, local_columns, strict=True):
        for key in ("mean", "std"):
            a, b = ours.pop(key), theirs.pop(key)
            assert (a is None and b is None) or math.isclose(a, b, rel_tol=1e-12), (ours, key)
        assert ours == theirs


def test_the_spark_model_serves_and_scores_unchanged(
    spark_trained: dict, demo_file: Path, tmp_path: Path
) -> None:
    """The API answers /v1/predict with a probability; batch scoring uses it as it is."""
    from fastapi.testclient import TestClient

    from churnops.batch import score
    from churnops.data.sources import read_parquet
    from churnops.scoring import Predictor
    from churnops.serving.app import create_app
    from churnops.serving.auth import create_key

    settings = spark_trained["settings"].model_copy(
        update={
            "database_url": f"sqlite:///{tmp_path / 'ops.db'}",
            "serve_access_log": False,
            "serve_audit": False,
            "serve_key_cache_seconds": 0.0,
        }
    )
    customers = read_parquet(demo_file).head(50)
    record = {
        k: (None if isinstance(v, float) and np.isnan(v) else v)
        for k, v in customers.drop(columns="churn").iloc[0].to_dict().items()
    }
    key = create_key(settings, "spark-test", "scorer")["key"]
    app = create_app(settings, predictor=Predictor.from_registry(settings))
    with TestClient(app) as client:
        answer = client.post("/v1/predict", json=record, headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    assert 0.0 < answer.json()["probability"] < 1.0

    path = tmp_path / "customers.parquet"
    customers.to_parquet(path, index=False)
    run = score(settings, path, scoring_date=date(2026, 3, 1))
    assert run["rows_scored"] == 50
    assert run["rows_rejected"] == 0


def test_xgboost_on_spark_registers_a_booster_that_loads(spark: Any, tmp_path: Path) -> None:
    """distributed XGBoost ends as the native booster artifact, scoring as before saving;
    the caller's session is used and left running."""
    from pyspark.sql import SparkSession

    from churnops.scoring.artifact import load_artifact, save_artifact
    from churnops.scoring.estimators import XGBoostEstimator
    from churnops.training.spark import train_spark

    path = tmp_path / "small.parquet"
    make_customers(400, seed=3).to_parquet(path, index=False)
    settings = Settings(home=tmp_path / "home", trials=1, cv_folds=2)
    result = train_spark(
        str(path), settings, target="churn", id_column="customer_id", families=["xgboost"]
    )
    assert SparkSession.getActiveSession() is spark
    assert isinstance(result.model.estimator, XGBoostEstimator)
    assert result.holdout["roc_auc"] > 0.6
    save_artifact(result.model, tmp_path / "artifact")
    loaded = load_artifact(tmp_path / "artifact")
    X = result.model.encoder.transform(result.holdout_frame)
    np.testing.assert_allclose(loaded.probabilities(X), result.model.probabilities(X), atol=1e-12)


@pytest.mark.parametrize(
    ("options", "code", "said"),
    [
        (["--target", "cancelled", "--engine", "spark"], 1, "Target column 'cancelled' not found"),
        (["--target", "churn", "--engine", "dask"], 2, "Unknown engine 'dask'"),
    ],
)
def test_bad_input_exits_with_a_message(
    demo_file: Path, options: list[str], code: int, said: str
) -> None:
    """A missing target and an unknown engine exit non-zero, saying so, without a traceback."""
    from churnops.cli import app

    result = CliRunner().invoke(app, ["train", str(demo_file), *options, "--json"])
    assert result.exit_code == code, result.output
    assert said in result.output
    assert "Traceback" not in result.output
