"""The training stage: validate, split, tune every family, blend, calibrate, threshold, explain.

``train`` is a plain function: data and settings in, a :class:`TrainResult` out. It does
not touch MLflow; :mod:`churnops.registry` logs and registers the result.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnops.campaign import ProfitModel
from churnops.config import Settings
from churnops.data.contract import DataContract, frame_digest, infer_contract
from churnops.data.validation import ValidationReport, validate
from churnops.errors import ConfigError, DataValidationError
from churnops.features.encoder import FeatureEncoder
from churnops.progress import ProgressFn, step
from churnops.scoring.catboost_trees import CodeLayout
from churnops.scoring.estimators import EnsembleEstimator, Estimator
from churnops.scoring.model import ScoringModel
from churnops.training import explain, plots
from churnops.training.calibration import CalibrationChoice, choose_calibration
from churnops.training.candidates import get_candidate, layout_of
from churnops.training.ensemble import Blend, blend_families
from churnops.training.evaluate import classification_metrics
from churnops.training.threshold import choose_threshold, profit_curve
from churnops.training.tuning import FamilyResult, TrialRecord, stratified_folds, tune_family


@dataclass
class TrainResult:
    """Everything a training run produced, ready to be logged and registered."""

    model: ScoringModel
    family: str
    params: dict[str, Any]
    cv: dict[str, float]
    holdout: dict[str, float]
    family_scores: dict[str, float]
    """Each family's best mean CV score, and the blend's nested one (``ensemble``)."""
    calibration: CalibrationChoice
    threshold_strategy: str
    trials: list[TrialRecord] = field(repr=False)
    chosen_trials: dict[str, int]
    """Family -> the trial whose configuration was refitted and registered (one per
    member for an ensemble)."""
    blend: Blend | None
    """The blend of the tuned families, chosen or not (None: one family, switched off, or
    no family given any weight)."""
    importance: dict[str, float]
    train_frame: pd.DataFrame = field(repr=False)
    holdout_frame: pd.DataFrame = field(repr=False)
    validation: ValidationReport
    dataset_digest: str
    artifacts_dir: Path
    seconds: float
    settings: dict[str, Any]

    @property
    def contract(self) -> DataContract:
        """Return the data contract the model was trained on."""
        return self.model.contract

    @property
    def chosen_trial(self) -> int:
        """The registered family's trial number (a single-family model only)."""
        if self.family not in self.chosen_trials:
            raise ValueError(f"an {self.family} has one chosen trial per member: chosen_trials")
        return self.chosen_trials[self.family]

    def is_chosen(self, trial: TrialRecord) -> bool:
        """Return whether ``trial`` is a configuration that was registered."""
        return self.chosen_trials.get(trial.family) == trial.number

    @property
    def leaderboard(self) -> pd.DataFrame:
        """Every trial of every family, best CV score first (pruned trials last)."""
        rows = [
            {
                "family": t.family,
                "trial": t.number,
                "state": t.state,
                "cv_score": t.score,
                "seconds": round(t.seconds, 3),
                "chosen": self.is_chosen(t),
                "params": json.dumps(t.params, sort_keys=True),
            }
            for t in self.trials
        ]
        table = pd.DataFrame(rows)
        return table.sort_values(
            "cv_score", ascending=False, na_position="last", kind="stable", ignore_index=True
        )


def train(
    df: pd.DataFrame,
    settings: Settings,
    *,
    target: str,
    id_column: str | None = None,
    contract: DataContract | None = None,
    positive: str | None = None,
    families: list[str] | None = None,
    trials: int | None = None,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Train a tuned, calibrated, thresholded churn model on ``df``.

    Args:
        df: the customer table with the churn label.
        settings: seed, holdout share, CV folds, metric, threshold economics.
        target: the churn label column.
        id_column: the customer id column (kept out of the features).
        contract: an existing contract to validate against; inferred from ``df`` if None.
        positive: the positive label when it cannot be guessed.
        families: model families to try (default: settings.families); with
            ``settings.ensemble`` their blend is tried too.
        trials: Optuna trials per family (default: settings.trials).
        progress: called as ``progress(task, done, total)`` for every step (a step without
            parts is one task of total 1), so no step runs silently.
    """
    started = time.perf_counter()
    families = families or settings.families
    trials = trials or settings.trials
    candidates = [get_candidate(name) for name in families]
    if contract is None:
        with step(progress, "infer contract"):
            contract = infer_contract(df, target, id_column, positive)
    with step(progress, "validate data"):
        checked = validate(df, contract)
        if not checked.report.ok:
            raise DataValidationError(
                "The training data breaks its contract:\n" + checked.report.summary(),
                {"issues": [i.model_dump() for i in checked.report.errors]},
            )
        frame = checked.frame
        y_all = contract.target_series(frame[contract.target]).to_numpy(dtype=int)
        train_idx, holdout_idx = _split(y_all, settings)
        train_frame, holdout_frame = frame.iloc[train_idx], frame.iloc[holdout_idx]
        y, y_holdout = y_all[train_idx], y_all[holdout_idx]
        encoder = FeatureEncoder(contract)
        layout = layout_of(encoder)
        X = encoder.transform(train_frame)
        X_holdout = encoder.transform(holdout_frame)
        folds = stratified_folds(y, settings.cv_folds, settings.seed)

    results: list[FamilyResult] = []
    for candidate in candidates:
        results.append(
            tune_family(
                candidate,
                X,
                y,
                folds,
                layout=layout,
                trials=trials,
                metric=settings.metric,
                seed=settings.seed,
                progress=progress,
            )
        )
    best = max(results, key=lambda r: r.best_score)
    family_scores = {r.family: r.best_score for r in results}
    blend: Blend | None = None
    if settings.ensemble and len(results) > 1:
        with step(progress, "blend families"):
            blend = blend_families(results, y, folds, settings.metric)
        if blend is not None:
            family_scores[EnsembleEstimator.family] = blend.score
    chosen = _chosen(best, blend if blend is not None and blend.beats(best) else None, results)

    with step(progress, "calibrate + threshold"):
        calibration = choose_calibration(chosen.oof, y, settings.seed)
        oof = calibration.calibrator(chosen.oof) if calibration.calibrator else chosen.oof
        economics = ProfitModel(
            settings.offer_cost, settings.acceptance_rate, settings.customer_value
        )
        values = _customer_values(train_frame, settings)
        choice = choose_threshold(y, oof, settings.threshold_strategy, economics, values)
        cv_metrics = classification_metrics(y, oof, choice.threshold)

    with step(progress, f"fit {chosen.family}"):
        model = ScoringModel(
            contract,
            _fit_native(chosen, X, y, layout, settings.seed),
            chosen.family,
            choice.threshold,
            calibration.calibrator,
            params=chosen.params,
        )
        p_holdout = model.probabilities(X_holdout)
        holdout_metrics = classification_metrics(y_holdout, p_holdout, choice.threshold)

    with step(progress, "explain + plot"):
        artifacts = Path(tempfile.mkdtemp(prefix="churnops-train-"))
        importance = _explain(model, X_holdout, artifacts, settings.seed)
        plots.evaluation_plots(y_holdout, p_holdout, choice.threshold, artifacts, chosen.family)
        if settings.threshold_strategy == "f1":
            plots.curve_plot(
                choice.thresholds,
                choice.objective,
                choice.threshold,
                "F1 (out-of-fold)",
                artifacts / "f1_curve.png",
            )
        holdout_values = _customer_values(holdout_frame, settings)
        profit = profit_curve(y_holdout, p_holdout, choice.thresholds, economics, holdout_values)
        plots.curve_plot(
            choice.thresholds,
            profit,
            choice.threshold,
            "campaign profit (holdout)",
            artifacts / "profit_curve.png",
        )
        (artifacts / "metrics.json").write_text(json.dumps(holdout_metrics, indent=2))

    return TrainResult(
        model=model,
        family=chosen.family,
        params=chosen.params,
        cv=cv_metrics,
        holdout=holdout_metrics,
        family_scores=family_scores,
        calibration=calibration,
        threshold_strategy=settings.threshold_strategy,
        trials=[t for r in results for t in r.trials],
        chosen_trials={r.family: r.best_trial for r in chosen.members},
        blend=blend,
        importance=importance,
        train_frame=train_frame.reset_index(drop=True),
        holdout_frame=holdout_frame.reset_index(drop=True),
        validation=checked.report,
        dataset_digest=frame_digest(df),
        artifacts_dir=artifacts,
        seconds=round(time.perf_counter() - started, 2),
        settings={
            "seed": settings.seed,
            "holdout": settings.holdout,
            "cv_folds": settings.cv_folds,
            "trials": trials,
            "families": ",".join(families),
            "ensemble": settings.ensemble,
            "metric": settings.metric,
            "threshold_strategy": settings.threshold_strategy,
        },
    )


@dataclass(frozen=True)
class _Chosen:
    """What is refitted and registered: one family's best configuration, or a blend."""

    family: str
    params: dict[str, Any]
    oof: np.ndarray
    members: list[FamilyResult]
    blend: Blend | None


def _chosen(best: FamilyResult, blend: Blend | None, results: list[FamilyResult]) -> _Chosen:
    if blend is None:
        return _Chosen(best.family, best.best_params, best.oof, [best], None)
    members = [r for r in results if r.family in blend.families]
    params: dict[str, Any] = {"intercept": blend.intercept}
    for member, weight in zip(members, blend.weights, strict=True):
        params[f"{member.family}.weight"] = weight
        params.update({f"{member.family}.{k}": v for k, v in member.best_params.items()})
    return _Chosen(EnsembleEstimator.family, params, blend.oof, members, blend)


def _fit_native(
    chosen: _Chosen, X: np.ndarray, y: np.ndarray, layout: CodeLayout, seed: int
) -> Estimator:
    """Refit the chosen configuration(s) on all training rows; return the native estimator."""
    natives = []
    for member in chosen.members:
        candidate = get_candidate(member.family)
        natives.append(
            candidate.to_native(candidate.build(member.best_params, seed, layout).fit(X, y))
        )
    if chosen.blend is None:
        return natives[0]
    return EnsembleEstimator(natives, chosen.blend.weights, chosen.blend.intercept)


def _split(y: np.ndarray, settings: Settings) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    minority = int(min(np.bincount(y, minlength=2)))
    if minority < settings.cv_folds + 2:
        raise DataValidationError(
            f"Only {minority} rows of the rarer class; need at least {settings.cv_folds + 2} "
            "to hold out and cross-validate."
        )
    idx = np.arange(len(y))
    return train_test_split(idx, test_size=settings.holdout, stratify=y, random_state=settings.seed)


def _customer_values(frame: pd.DataFrame, settings: Settings) -> np.ndarray | None:
    column = settings.customer_value_column
    if column is None:
        return None
    if column not in frame.columns:
        raise ConfigError(f"customer_value_column {column!r} is not in the data.")
    return pd.to_numeric(frame[column], errors="coerce").fillna(0.0).to_numpy(dtype=float)


def _explain(model: ScoringModel, X: np.ndarray, out_dir: Path, seed: int) -> dict[str, float]:
    importance, grouped, _ = explain.global_importance(model, X, seed)
    (out_dir / "shap_importance.json").write_text(json.dumps(importance, indent=2))
    explain.shap_plot(grouped, model.encoder.source_columns, out_dir)
    return importance
