"""Tune each model family with Optuna (seeded TPE, median pruning over CV folds)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from churnops.training.candidates import Candidate
from churnops.training.evaluate import score_metric

ProgressFn = Callable[[str, int, int], None]


@dataclass
class FamilyResult:
    """The best configuration found for one family, with its out-of-fold predictions."""

    family: str
    best_params: dict[str, Any]
    best_score: float
    oof: np.ndarray
    trials: pd.DataFrame = field(repr=False)


def cv_predict(
    candidate: Candidate,
    params: dict[str, Any],
    X: np.ndarray,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    seed: int,
    metric: str,
    on_fold: Callable[[int, float], None] | None = None,
) -> np.ndarray:
    """Return out-of-fold probabilities; ``on_fold(i, running_score)`` may raise to prune."""
    oof = np.full(len(y), np.nan)
    scores = []
    for i, (fit_idx, eval_idx) in enumerate(folds):
        model = candidate.build(params, seed)
        model.fit(X[fit_idx], y[fit_idx])
        oof[eval_idx] = model.predict_proba(X[eval_idx])[:, 1]
        scores.append(score_metric(metric, y[eval_idx], oof[eval_idx]))
        if on_fold is not None:
            on_fold(i, float(np.mean(scores)))
    return oof


def tune_family(
    candidate: Candidate,
    X: np.ndarray,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    *,
    trials: int,
    metric: str,
    seed: int,
    progress: ProgressFn | None = None,
) -> FamilyResult:
    """Search ``candidate``'s space for ``trials`` trials; score = mean CV ``metric``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(5, trials)),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        study_name=candidate.name,
    )
    oofs: dict[int, np.ndarray] = {}

    def objective(trial: optuna.Trial) -> float:
        params = candidate.suggest(trial)

        def report(step: int, running: float) -> None:
            trial.report(running, step)
            if trial.should_prune():
                raise optuna.TrialPruned

        oof = cv_predict(candidate, params, X, y, folds, seed, metric, report)
        oofs[trial.number] = oof
        return float(np.mean([score_metric(metric, y[e], oof[e]) for _, e in folds]))

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if progress is not None:
            progress(candidate.name, trial.number + 1, trials)

    study.optimize(objective, n_trials=trials, callbacks=[callback])
    best = study.best_trial
    table = study.trials_dataframe(attrs=("number", "value", "state", "params", "duration"))
    table.insert(0, "family", candidate.name)
    table["duration"] = table["duration"].dt.total_seconds()
    return FamilyResult(
        candidate.name, dict(best.params), float(best.value), oofs[best.number], table
    )


def stratified_folds(y: np.ndarray, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return the CV folds every family is tuned on (the same for all, so scores compare)."""
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))
