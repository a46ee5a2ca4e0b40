"""Tune each model family with Optuna (seeded TPE, median pruning over CV folds).

Every trial is kept as a :class:`TrialRecord` (plain data, no Optuna or MLflow object) so
the registry can log it as a child run after the fact, in one batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from churnops.progress import ProgressFn
from churnops.scoring.catboost_trees import CodeLayout
from churnops.training.candidates import Candidate
from churnops.training.evaluate import score_metric

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class TrialRecord:
    """One tuning trial: what was tried, how it scored, and when it ran."""

    family: str
    number: int
    params: dict[str, Any]
    score: float | None
    """Mean CV score; None when the trial was pruned or failed."""
    state: str
    """Optuna's state in lower case: ``complete``, ``pruned`` or ``fail``."""
    started: float
    """Start time in seconds since the epoch."""
    seconds: float

    @classmethod
    def from_optuna(cls, family: str, trial: optuna.trial.FrozenTrial) -> TrialRecord:
        """Copy what a finished Optuna trial says into a record (its times are set).

        Optuna gives a pruned trial the running mean of the folds it finished as its
        value; that is not a CV score comparable to the others, so the record has none.
        """
        complete = trial.state.name == "COMPLETE"
        return cls(
            family,
            trial.number,
            dict(trial.params),
            float(trial.value) if complete and trial.value is not None else None,
            trial.state.name.lower(),
            trial.datetime_start.timestamp(),  # type: ignore[union-attr]
            trial.duration.total_seconds(),  # type: ignore[union-attr]
        )


@dataclass
class FamilyResult:
    """The best configuration found for one family, with its out-of-fold predictions."""

    family: str
    best_params: dict[str, Any]
    best_score: float
    best_trial: int
    oof: np.ndarray = field(repr=False)
    trials: list[TrialRecord] = field(repr=False)


def cv_predict(
    candidate: Candidate,
    params: dict[str, Any],
    X: np.ndarray,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    seed: int,
    metric: str,
    layout: CodeLayout,
    on_fold: Callable[[int, float], None] | None = None,
) -> np.ndarray:
    """Return out-of-fold probabilities; ``on_fold(i, running_score)`` may raise to prune."""
    oof = np.full(len(y), np.nan)
    scores = []
    for i, (fit_idx, eval_idx) in enumerate(folds):
        model = candidate.build(params, seed, layout)
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
    layout: CodeLayout,
    trials: int,
    metric: str,
    seed: int,
    progress: ProgressFn | None = None,
) -> FamilyResult:
    """Search ``candidate``'s space; score = mean CV ``metric``.

    ``trials`` is the per-family budget; the family runs its share of it
    (:meth:`Candidate.trials`), starting from its ``first_trial`` when it has one.
    """

    def evaluate(trial: optuna.Trial, params: dict[str, Any]) -> tuple[float, np.ndarray]:
        import optuna

        def report(step: int, running: float) -> None:
            trial.report(running, step)
            if trial.should_prune():
                raise optuna.TrialPruned

        oof = cv_predict(candidate, params, X, y, folds, seed, metric, layout, report)
        return float(np.mean([score_metric(metric, y[e], oof[e]) for _, e in folds])), oof

    return search(candidate, evaluate, trials=trials, seed=seed, progress=progress)


def search(
    candidate: Candidate,
    evaluate: Callable[[optuna.Trial, dict[str, Any]], tuple[float, np.ndarray]],
    *,
    trials: int,
    seed: int,
    progress: ProgressFn | None = None,
    engine: str = "",
) -> FamilyResult:
    """Run Optuna over ``candidate``'s space; ``evaluate(trial, params)`` cross-validates.

    Shared by both engines (``engine`` only names the progress bar): ``evaluate``
    returns the mean CV score and the out-of-fold probabilities, and may report fold
    scores to the trial to be pruned (seeded TPE, median pruning).
    """
    trials = candidate.trials(trials)
    task = f"tune {candidate.name}{f' ({engine})' if engine else ''}"
    if progress is not None:  # the bar shows (and its clock runs) from the start
        progress(task, 0, trials)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(5, trials)),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        study_name=candidate.name,
    )
    if candidate.first_trial is not None:
        study.enqueue_trial(candidate.first_trial)
    oofs: dict[int, np.ndarray] = {}

    def objective(trial: optuna.Trial) -> float:
        score, oofs[trial.number] = evaluate(trial, candidate.suggest(trial))
        return score

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if progress is not None:
            progress(task, trial.number + 1, trials)

    study.optimize(objective, n_trials=trials, callbacks=[callback])
    best = study.best_trial
    return FamilyResult(
        candidate.name,
        dict(best.params),
        float(best.value),
        best.number,
        oofs[best.number],
        [TrialRecord.from_optuna(candidate.name, t) for t in study.trials],
    )


def stratified_folds(y: np.ndarray, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return the CV folds every family is tuned on (the same for all, so scores compare)."""
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))
