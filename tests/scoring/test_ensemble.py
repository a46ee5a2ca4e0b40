"""The ensemble estimator: a weighted sum of native members, saved as a folder of folders.

It must behave like any family: one row equals the batch bit for bit, contributions sum
to the margin, the files round-trip, and the registered model scores the same through
the API's path as through MLflow's pyfunc.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from churnops.config import Settings
from churnops.data.contract import infer_contract
from churnops.features.encoder import FeatureEncoder
from churnops.scoring import one_row
from churnops.scoring.artifact import load_artifact, save_artifact
from churnops.scoring.estimators import (
    EnsembleEstimator,
    LightGBMEstimator,
    LogisticEstimator,
    load_estimator,
)
from churnops.scoring.model import ScoringModel
from tests.conftest import home_tracking_uri
from tests.factories import make_customers
from tests.fixtures.make_artifacts import FAMILIES as FIXTURE_FAMILIES
from tests.fixtures.make_artifacts import build, fit_family
from tests.training.test_ensemble import FAMILIES, additive_table


@pytest.fixture(scope="module")
def model() -> ScoringModel:
    """The fixture-sized ensemble: logistic + LightGBM + CatBoost, calibrated."""
    return build("ensemble")


@pytest.fixture(scope="module")
def X(model: ScoringModel) -> np.ndarray:
    return model.encoder.transform(make_customers(500, seed=51))


def test_margins_are_the_weighted_sum_of_the_members(model: ScoringModel, X: np.ndarray) -> None:
    """intercept + Σ weight · member margin, in member order."""
    estimator = model.estimator
    assert isinstance(estimator, EnsembleEstimator)
    expected = np.full(len(X), estimator.intercept)
    for member, weight in zip(estimator.members, estimator.weights, strict=True):
        expected += weight * member.margins(X)
    assert np.array_equal(estimator.margins(X), expected)


def test_one_row_is_the_batch_bit_for_bit(model: ScoringModel, X: np.ndarray) -> None:
    """margin_one (one compiled call over the members) equals margins, row for row."""
    one = np.array([model.estimator.margin_one(row) for row in X.tolist()])
    assert np.array_equal(one, model.estimator.margins(X))


@pytest.fixture(scope="module")
def every_family() -> tuple[EnsembleEstimator, np.ndarray]:
    """A blend of all five families, fitted on one table, and fresh rows (some missing)."""
    df = make_customers(300, seed=52)
    encoder = FeatureEncoder(infer_contract(df, "churn", "customer_id"))
    X = encoder.transform(df)
    y = encoder.contract.target_series(df["churn"]).to_numpy(dtype=int)
    members = [fit_family(name, encoder, X, y) for name in FIXTURE_FAMILIES if name != "ensemble"]
    blend = EnsembleEstimator(members, [0.3, 0.2, 0.25, 0.15, 0.1], -0.05)
    return blend, encoder.transform(make_customers(400, seed=53))


def test_a_blend_of_every_family_is_one_compiled_call_equal_to_the_batch(
    every_family: tuple[EnsembleEstimator, np.ndarray],
) -> None:
    """The fused one-row kernel reads every family's packed arrays: the batch's bits."""
    blend, X = every_family
    assert {m.family for m in blend.members} == {
        "logistic",
        "spline",
        "lightgbm",
        "xgboost",
        "catboost",
    }
    assert blend.packed is not None
    assert blend.packed[0] == one_row.ENSEMBLE
    one = np.array([blend.margin_one(row) for row in X.tolist()])
    assert np.array_equal(one, blend.margins(X))
    for member in blend.members:  # and each family alone, through the same entry
        assert member.packed is not None
        mine = np.array([member.margin_one(row) for row in X[:100].tolist()])
        assert np.array_equal(mine, member.margins(X[:100])), member.family


def test_a_member_without_compiled_arithmetic_keeps_the_blend_on_the_batch_path(
    every_family: tuple[EnsembleEstimator, np.ndarray],
) -> None:
    """A booster the walk does not cover (LightGBM's own predict): still the batch's bits."""
    blend, X = every_family
    members = [
        LightGBMEstimator(m.model_text, m.width, m.best_iteration, compiled=False)
        if isinstance(m, LightGBMEstimator)
        else m
        for m in blend.members
    ]
    uncompiled = EnsembleEstimator(members, blend.weights, blend.intercept)
    assert uncompiled.packed is None
    one = np.array([uncompiled.margin_one(row) for row in X[:50].tolist()])
    assert np.array_equal(one, uncompiled.margins(X[:50]))
    np.testing.assert_allclose(one, blend.margins(X[:50]), rtol=0, atol=1e-12)


def test_contributions_are_the_weighted_members_and_sum_to_the_margin(
    model: ScoringModel, X: np.ndarray
) -> None:
    """Linear in log-odds: the members' SHAP, weighted; the intercept joins the bias."""
    estimator = model.estimator
    assert isinstance(estimator, EnsembleEstimator)
    contributions = estimator.contributions(X[:80])
    np.testing.assert_allclose(contributions.sum(axis=1), estimator.margins(X[:80]), atol=1e-9)
    expected = sum(
        w * m.contributions(X[:80])
        for m, w in zip(estimator.members, estimator.weights, strict=True)
    )
    np.testing.assert_allclose(contributions[:, :-1], expected[:, :-1], atol=1e-12)
    np.testing.assert_allclose(contributions[:, -1], expected[:, -1] + estimator.intercept)


def test_each_member_is_saved_in_its_own_format_in_its_own_folder(
    model: ScoringModel, X: np.ndarray, tmp_path: Path
) -> None:
    """Nested folders are in the manifest; the loaded ensemble gives the same bits."""
    manifest = save_artifact(model, tmp_path / "model")
    assert {
        "estimator.json",
        "logistic/estimator.json",
        "lightgbm/lightgbm_model.txt",
        "catboost/catboost_model.json",
        "catboost/estimator.json",
    } <= set(manifest)
    loaded = load_artifact(tmp_path / "model", manifest)
    assert np.array_equal(loaded.probabilities(X), model.probabilities(X))
    assert [m.family for m in loaded.estimator.members] == ["logistic", "lightgbm", "catboost"]


def test_a_changed_member_file_is_refused(model: ScoringModel, tmp_path: Path) -> None:
    """The manifest covers the member folders: a changed member file refuses the model."""
    from churnops.errors import ModelIntegrityError

    manifest = save_artifact(model, tmp_path / "model")
    member = tmp_path / "model" / "lightgbm" / "lightgbm_model.txt"
    member.write_text(member.read_text().replace("leaf_value=", "leaf_value=1 ", 1))
    with pytest.raises(ModelIntegrityError, match=r"lightgbm/lightgbm_model\.txt"):
        load_artifact(tmp_path / "model", manifest)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"folder": "../lightgbm"}, "not a plain name"),
        ({"family": "ensemble"}, "cannot hold an ensemble"),
    ],
)
def test_member_entries_that_leave_the_folder_are_refused(
    model: ScoringModel, tmp_path: Path, change: dict[str, str], message: str
) -> None:
    """A member folder must be a plain name inside the artifact, and not an ensemble."""
    model.estimator.save(tmp_path)
    meta = json.loads((tmp_path / "estimator.json").read_text())
    meta["members"][1].update(change)
    (tmp_path / "estimator.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=message):
        load_estimator("ensemble", tmp_path)


def test_members_must_be_distinct_families_of_one_width(model: ScoringModel) -> None:
    """Two members of one family, or members reading different widths, are refused."""
    members = model.estimator.members
    with pytest.raises(ValueError, match="distinct"):
        EnsembleEstimator([members[0], members[0]], [0.5, 0.5], 0.0)
    width = members[0].width + 1
    wider = LogisticEstimator((0.0,) * width, (1.0,) * width, (0.1,) * width, 0.0)
    with pytest.raises(ValueError, match="widths"):
        EnsembleEstimator([members[1], wider], [0.5, 0.5], 0.0)


def test_pickled_for_spark_it_scores_the_same(model: ScoringModel, X: np.ndarray) -> None:
    """Spark ships the ScoringModel to workers; the members rebuild their compiled walks."""
    copy = pickle.loads(pickle.dumps(model))
    assert np.array_equal(copy.probabilities(X), model.probabilities(X))


@pytest.mark.integration
def test_registered_ensemble_scores_the_same_through_the_api_path_and_the_pyfunc(
    tmp_path: Path,
) -> None:
    """Trained, registered, then loaded by the API's Predictor and by mlflow.pyfunc: 1e-9."""
    import mlflow

    from churnops.scoring import Predictor
    from churnops.stages import train_and_register

    df = additive_table()
    home = tmp_path / "home"
    settings = Settings(home=home, trials=1, cv_folds=3, tracking_uri=home_tracking_uri(home))
    out = train_and_register(df, settings, target="churned", id_column="account", families=FAMILIES)
    assert out["family"] == "ensemble"
    version = out["model_version"]
    predictor = Predictor.from_registry(settings, alias=None, version=version)
    assert isinstance(predictor.model.estimator, EnsembleEstimator)
    frame = df.drop(columns=["churned"]).head(300)
    records: list[dict[str, Any]] = frame.to_dict("records")
    pyfunc = mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{version}")
    expected = pyfunc.predict(frame)["probability"].to_numpy()
    one = np.array([predictor.score_one(record)[0] for record in records])
    many, _ = predictor.score_many(records)
    assert np.abs(one - expected).max() < 1e-9
    assert np.abs(many - expected).max() < 1e-9
