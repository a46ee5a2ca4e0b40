"""Registry integration on a real MLflow SQLite store: register, promote, keep, roll back."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from churnops import registry
from churnops.config import Settings
from churnops.errors import ModelNotFoundError
from churnops.registry.promotion import gate
from churnops.scoring.estimators import ESTIMATORS
from churnops.stages import train_and_register
from tests.factories import make_customers


def test_gate_promotes_only_on_a_clear_win() -> None:
    """The challenger must beat the champion by at least min_delta."""
    assert gate(0.80, 0.81, "roc_auc", 0.005)[0] == "promoted"
    assert gate(0.80, 0.803, "roc_auc", 0.005)[0] == "kept"
    decision, reason = gate(0.80, 0.79, "roc_auc", 0.005)
    assert decision == "kept"
    assert "-0.0100" in reason


@pytest.fixture
def home(tmp_path: Path, trained_home: Path) -> Settings:
    """A private copy of the session's trained home (champion v1)."""
    target = tmp_path / "home"
    shutil.copytree(trained_home, target)
    return Settings(home=target, trials=2, cv_folds=3)


@pytest.mark.integration
def test_first_version_is_champion_and_challenger(home: Settings) -> None:
    """The first registered version carries both aliases, its family and holdout metrics."""
    (v1,) = registry.list_versions(home)
    assert v1.aliases == ["challenger", "champion"]
    assert v1.family in ESTIMATORS  # any family, the blend included
    assert v1.holdout["roc_auc"] > 0.6
    assert registry.promote(home).decision == "kept"


@pytest.mark.integration
def test_promote_keep_and_rollback(home: Settings) -> None:
    """A weaker challenger is kept out; a forced promotion can be rolled back."""
    weak = make_customers(800, seed=2)
    weak["churn"] = weak["churn"].sample(frac=1.0, random_state=0).to_numpy()  # labels shuffled
    summary = train_and_register(
        weak, home, target="churn", id_column="customer_id", families=["logistic"]
    )
    assert summary["model_version"] == "2"
    kept = registry.promote(home)
    assert kept.decision == "kept"
    assert kept.champion_score > kept.challenger_score
    assert kept.evaluated_rows == 160
    assert registry.get_version(home, alias="champion").version == "1"

    forced = registry.promote(home, min_delta=-1.0)
    assert forced.decision == "promoted"
    assert registry.get_version(home, alias="champion").version == "2"

    back = registry.rollback(home)
    assert (back.from_version, back.to_version) == ("2", "1")
    assert registry.get_version(home, alias="champion").version == "1"
    with pytest.raises(ModelNotFoundError, match="no previous champion"):
        registry.rollback(home)
    assert registry.rollback(home, to_version="2").to_version == "2"

    actions = [e["action"] for e in registry.list_events(home)]
    assert actions == ["rollback", "rollback", "promoted", "kept", "initial"]


@pytest.mark.integration
def test_pyfunc_matches_in_process_predictions(home: Settings) -> None:
    """mlflow.pyfunc.load_model gives the same probabilities as the scoring model."""
    import mlflow

    from churnops.registry.tracking import configure

    configure(home)
    df = make_customers(200, seed=11)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{home.model_name}@champion")
    theirs = pyfunc.predict(df.drop(columns="churn"))
    ours = registry.load_model(home).model.predict_frame(df)
    assert list(theirs.columns) == ["customer_id", "probability", "churn", "error"]
    np.testing.assert_allclose(theirs["probability"], ours["probability"], atol=1e-12)
    assert (theirs["customer_id"] == df["customer_id"]).all()


@pytest.mark.integration
def test_run_logs_everything(home: Settings) -> None:
    """The run has params, CV/holdout metrics, the contract, plots, data and the leaderboard."""
    from mlflow import MlflowClient

    version = registry.get_version(home, alias="champion")
    client = MlflowClient(home.resolved_tracking_uri)
    run = client.get_run(version.run_id)
    assert {"cv_roc_auc", "holdout_roc_auc", "holdout_brier", "cv_best_logistic"} <= set(
        run.data.metrics
    )
    assert run.data.tags["churnops.dataset_digest"]
    assert "mlflow.source.git.commit" in run.data.tags
    paths = {a.path for a in client.list_artifacts(version.run_id)}
    assert {"contract.json", "evaluation", "data", "leaderboard.json"} <= paths
    plots = {Path(a.path).name for a in client.list_artifacts(version.run_id, "evaluation")}
    assert {"roc_curve.png", "shap_importance.png", "profit_curve.png"} <= plots
    assert len(registry.load_run_frame(home, version.run_id)) == 160


@pytest.mark.integration
def test_missing_model_is_a_clear_error(settings: Settings) -> None:
    """Asking an empty registry for the champion says how to get one."""
    with pytest.raises(ModelNotFoundError, match="churnops train"):
        registry.load_model(settings)
