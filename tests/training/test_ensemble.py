"""The blend of the tuned families: honest nested CV, non-negative weights, chosen only on merit."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnops.config import Settings
from churnops.scoring.calibration import expit, logit
from churnops.scoring.estimators import EnsembleEstimator
from churnops.training.ensemble import MIN_GAIN, blend_families, fit_weights
from churnops.training.run import TrainResult, train
from churnops.training.tuning import FamilyResult, stratified_folds
from tests.factories import make_customers

FAMILIES = ["logistic", "catboost"]


def additive_table(n: int = 600, seed: int = 3) -> pd.DataFrame:
    """Churn = many weak linear drivers + an interaction of two categoricals (an XOR).

    A linear model gets the first part and cannot express the second; trees get the
    second and approximate the first poorly on few rows: each family misses a part the
    other has, so their blend beats both.
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))
    plan, region = rng.choice(["a", "b"], n), rng.choice(["x", "y"], n)
    z = X @ np.linspace(0.8, 0.2, 8) + 2.0 * ((plan == "a") ^ (region == "x")) - 1.0
    df = pd.DataFrame(X, columns=[f"usage_{i}" for i in range(8)])
    df["plan"], df["region"] = plan, region
    df.insert(0, "account", [f"A{i}" for i in range(n)])
    df["churned"] = np.where(rng.random(n) < expit(z), "yes", "no")
    return df


def interaction_table(n: int = 600, seed: int = 1) -> pd.DataFrame:
    """Churn driven mostly by an interaction: trees alone do as well as any blend."""
    df = make_customers(n, seed=seed)
    rng = np.random.default_rng(seed)
    z = (
        0.04 * (df["monthly_charges"] - 65)
        - 0.05 * (df["tenure"] - 36)
        + 2.5 * ((df["contract"] == "Month-to-month") ^ (df["internet_service"] == "Fiber optic"))
        - 1.2
    )
    return df.assign(churn=np.where(rng.random(n) < expit(z.to_numpy()), "Yes", "No"))


def _train(df: pd.DataFrame, target: str, id_column: str, **settings: object) -> TrainResult:
    home = Path(tempfile.mkdtemp())
    config = Settings(home=home, trials=1, cv_folds=3, **settings)  # type: ignore[arg-type]
    return train(df, config, target=target, id_column=id_column, families=FAMILIES)


def _family(name: str, oof: np.ndarray, score: float) -> FamilyResult:
    return FamilyResult(name, {}, score, 0, oof, [])


@pytest.fixture(scope="module")
def blended() -> TrainResult:
    return _train(additive_table(), "churned", "account")


def test_the_blend_is_chosen_when_its_nested_cv_beats_every_family(blended: TrainResult) -> None:
    """Registered as an ensemble of the weighted members, each member's trial marked."""
    scores = blended.family_scores
    assert blended.family == "ensemble"
    assert scores["ensemble"] > max(scores[f] for f in FAMILIES) + MIN_GAIN
    estimator = blended.model.estimator
    assert isinstance(estimator, EnsembleEstimator)
    assert blended.blend is not None
    assert [m.family for m in estimator.members] == blended.blend.families == FAMILIES
    assert estimator.weights == blended.blend.weights
    assert all(w > 0 for w in estimator.weights)
    assert blended.params["intercept"] == estimator.intercept
    assert {t.family for t in blended.trials if blended.is_chosen(t)} == set(FAMILIES)
    assert blended.holdout["roc_auc"] > 0.7


def test_the_blend_is_not_chosen_when_a_family_does_as_well() -> None:
    """Trees alone capture this table; the blend is fitted and reported, the family is kept."""
    result = _train(interaction_table(), "churn", "customer_id")
    scores = result.family_scores
    assert result.blend is not None
    assert scores["ensemble"] <= max(scores[f] for f in FAMILIES) + MIN_GAIN
    assert result.family == max(FAMILIES, key=scores.__getitem__)
    assert result.model.estimator.family == result.family
    assert result.chosen_trials == {result.family: result.chosen_trial}


def test_no_blend_when_switched_off() -> None:
    """settings.ensemble=False: families only, no ensemble score."""
    result = _train(additive_table(300, seed=4), "churned", "account", ensemble=False)
    assert result.blend is None
    assert "ensemble" not in result.family_scores
    assert result.family in FAMILIES


def test_nested_cv_scores_each_fold_with_weights_fitted_without_it() -> None:
    """The blend's out-of-fold margins on a fold are those of weights fitted on the others."""
    rng = np.random.default_rng(0)
    n = 900
    a, b = rng.normal(size=n), rng.normal(size=n)
    y = (rng.random(n) < expit(a + b)).astype(int)
    first = expit(a + rng.normal(0, 0.3, n))  # each sees half of the signal
    second = expit(b + rng.normal(0, 0.3, n))
    folds = stratified_folds(y, 3, 0)
    results = [_family("one", first, 0.0), _family("two", second, 0.0)]
    blend = blend_families(results, y, folds, "roc_auc")
    assert blend is not None
    margins = np.column_stack([logit(first), logit(second)])
    fit_idx, eval_idx = folds[1]
    intercept, weights = fit_weights(margins[fit_idx], y[fit_idx])
    np.testing.assert_allclose(blend.oof[eval_idx], expit(intercept + margins[eval_idx] @ weights))
    aucs = [float(np.mean([_auc(y[e], p[e]) for _, e in folds])) for p in (first, second)]
    assert blend.score > max(aucs) + 0.05  # complementary halves: the blend is far better
    best = _family("one", first, max(aucs))
    assert blend.beats(best)


def test_weights_are_non_negative_and_a_useless_member_is_dropped() -> None:
    """A member that is the other's mirror image gets weight 0: one member is no ensemble."""
    rng = np.random.default_rng(1)
    n = 600
    z = rng.normal(size=n)
    y = (rng.random(n) < expit(2 * z)).astype(int)
    good = expit(2 * z + rng.normal(0, 0.5, n))
    mirror = 1 - good  # negatively informative: a negative weight would use it
    _intercept, weights = fit_weights(np.column_stack([logit(good), logit(mirror)]), y)
    assert weights.min() >= 0
    folds = stratified_folds(y, 3, 0)
    results = [_family("good", good, 0.5), _family("mirror", mirror, 0.1)]
    blend = blend_families(results, y, folds, "roc_auc")
    assert blend is not None
    assert blend.families == ["good"]
    assert blend.score > 0.5 + MIN_GAIN  # scores well, but a one-member blend is not chosen
    assert not blend.beats(results[0])


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))
