"""Tuning: each family's budget share and first trial; pruned trials carry no CV score."""

from __future__ import annotations

from typing import Any

import numpy as np

from churnops.scoring.catboost_trees import CodeLayout
from churnops.training.candidates import Candidate
from churnops.training.tuning import stratified_folds, tune_family


class _Noisy:
    """Predicts the label blurred by ``noise``: a family whose parameter sets its quality."""

    def __init__(self, noise: float, seed: int) -> None:
        self.noise, self.rng = noise, np.random.default_rng(seed)

    def fit(self, X: np.ndarray, y: np.ndarray) -> _Noisy:
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = (1 - self.noise) * X[:, 0] + self.noise * self.rng.random(len(X))
        return np.column_stack([1 - p, p])


def _candidate(**options: Any) -> Candidate:
    return Candidate(
        "noisy",
        lambda trial: {"noise": trial.suggest_float("noise", 0.0, 1.0)},
        lambda params, seed, layout: _Noisy(params["noise"], seed),
        lambda model: model,
        **options,
    )


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = (rng.random(600) < 0.3).astype(int)
    return y[:, None].astype(float), y


def test_pruned_trials_have_no_cv_score() -> None:
    """Optuna values a pruned trial at its partial folds' mean; the record says None."""
    X, y = _data()
    folds = stratified_folds(y, 4, 0)
    result = tune_family(
        _candidate(), X, y, folds, layout=CodeLayout(1, ()), trials=20, metric="roc_auc", seed=0
    )
    states = [t.state for t in result.trials]
    assert "pruned" in states
    assert "complete" in states
    for trial in result.trials:
        assert (trial.score is None) == (trial.state != "complete")
    assert result.best_score == max(t.score for t in result.trials if t.score is not None)


def test_a_family_runs_its_share_of_the_budget_from_its_first_trial() -> None:
    """trial_share scales the per-family budget; first_trial is the first configuration."""
    X, y = _data()
    candidate = _candidate(trial_share=0.5, first_trial={"noise": 0.25})
    result = tune_family(
        candidate,
        X,
        y,
        stratified_folds(y, 3, 0),
        layout=CodeLayout(1, ()),
        trials=6,
        metric="roc_auc",
        seed=0,
    )
    assert len(result.trials) == 3
    assert result.trials[0].params == {"noise": 0.25}
