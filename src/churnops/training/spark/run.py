"""The training stage on Spark: the local trainer's steps, with the table never on the driver.

What stays on the workers: reading, the contract's statistics, validating and encoding
every row (the very :class:`FeatureEncoder`, through ``mapInPandas``: the features are
the local ones by construction), and fitting. What reaches the driver is one label and one
out-of-fold probability per row, a few statistics, and samples for the logged frames.
From those the driver runs the local trainer's own functions: the split and folds
(so a single file splits exactly as locally), calibration, the threshold, metrics,
explanations and plots. The result is a :class:`TrainResult`, registered like a local one.

Differences from the local engine: families are logistic and xgboost (no blend); the
logged ``training``/``holdout`` frames are uniform samples of at most
:data:`SAMPLE_ROWS` rows (metrics use every holdout row); the validation report holds
errors (rows breaking the contract, labels, duplicate ids, missing columns), not warnings.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnops.campaign import ProfitModel
from churnops.config import Settings
from churnops.data.contract import DataContract
from churnops.data.validation import Issue, ValidationReport, validate
from churnops.errors import ConfigError, DataValidationError
from churnops.features.encoder import FeatureEncoder
from churnops.progress import ProgressFn, step
from churnops.scoring.model import ScoringModel
from churnops.training import plots
from churnops.training.calibration import choose_calibration
from churnops.training.candidates import get_candidate
from churnops.training.evaluate import classification_metrics, score_metric
from churnops.training.run import TrainResult, _explain, _split
from churnops.training.spark.contract import ORDER, spark_contract, table_digest
from churnops.training.spark.families import FEATURES, LABEL, SPARK_FAMILIES, spark_family
from churnops.training.spark.source import Positions, read_frame
from churnops.training.threshold import choose_threshold, profit_curve
from churnops.training.tuning import FamilyResult, search, stratified_folds

SAMPLE_ROWS = 100_000  # rows of the logged training and holdout frames
EXPLAIN_ROWS = 2000  # holdout rows brought to the driver for SHAP (explain.SAMPLE_ROWS)
ERRORS_SHOWN = 5
CODEGEN_ROWS = 1_000_000  # tables this large compile the contract's aggregations
ENCODED_SCHEMA = "pos long, fold int, label double, features array<double>, problem string"


def train_spark(
    data: str | None,
    settings: Settings,
    *,
    target: str,
    id_column: str | None = None,
    contract: DataContract | None = None,
    positive: str | None = None,
    families: list[str] | None = None,
    trials: int | None = None,
    table: str | None = None,
    master: str = "local[2]",
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Train a tuned, calibrated, thresholded churn model on a table Spark reads.

    Args:
        data: a Parquet file or folder, a CSV file or an ``s3://`` URL (or None with
            ``table``).
        settings: seed, holdout share, CV folds, metric, threshold economics.
        target: the churn label column.
        id_column: the customer id column (kept out of the features).
        contract: an existing contract to validate against; inferred with Spark if None.
        positive: the positive label when it cannot be guessed.
        families: logistic and/or xgboost (default: those of settings.families, else
            logistic).
        trials: Optuna trials per family (default: settings.trials).
        table: a table of the Spark catalog to read instead of ``data``.
        master: the Spark master (``local[2]``, ``spark://host:7077``, ``yarn``...).
        progress: called as ``progress(task, done, total)`` for every step.
    """
    from churnops.extras import require

    require("pyspark", "spark")
    from pyspark.sql import SparkSession

    from churnops.batch.spark import spark_session

    started = time.perf_counter()
    names = families or [f for f in settings.families if f in SPARK_FAMILIES] or ["logistic"]
    chosen = [spark_family(name) for name in names]
    # A session the caller already runs (a notebook's, a test module's) is used and left
    # running; one started here is stopped here.
    active = SparkSession.getActiveSession()
    with tempfile.TemporaryDirectory(prefix="churnops-spark-train-") as tmp:
        scratch = Path(tmp)
        with step(progress, f"start Spark ({master})"):
            spark = active or spark_session(master, scratch, settings.spark_driver_memory)
            spark.sparkContext.setLogLevel("ERROR")
            # Training's group-bys return a few rows: Spark's default of 200 shuffle
            # partitions is 200 tasks per group-by (the demo's contract: 239 s -> 179 s).
            cores = spark.sparkContext.defaultParallelism
            spark.conf.set("spark.sql.shuffle.partitions", str(2 * cores))
        try:
            run = _SparkRun(spark, settings, scratch, progress)
            result = run.train(data, table, target, id_column, contract, positive, chosen, trials)
        finally:
            if active is None:
                spark.stop()
    result.seconds = round(time.perf_counter() - started, 2)
    result.settings.update({"engine": "spark", "spark_master": master})
    return result


class _SparkRun:
    """One training on one session: the steps share the session, scratch and arrays."""

    def __init__(
        self, spark: Any, settings: Settings, scratch: Path, progress: ProgressFn | None
    ) -> None:
        self.spark = spark
        self.settings = settings
        self.scratch = scratch
        self.progress = progress

    def train(
        self,
        data: str | None,
        table: str | None,
        target: str,
        id_column: str | None,
        contract: DataContract | None,
        positive: str | None,
        families: list[Any],
        trials: int | None,
    ) -> TrainResult:
        settings, progress = self.settings, self.progress
        trials = trials or settings.trials
        with step(progress, "read data"):
            frame = read_frame(self.spark, data, table)
        with step(progress, "infer contract (Spark)"), _without_codegen(self.spark, frame):
            if contract is None:
                contract = spark_contract(frame, target, id_column, positive)
                digest = contract.digest
            else:
                digest = table_digest(frame)
        with step(progress, "labels + split"):
            _required_columns(frame, contract)
            labels = self._labels(frame, contract)
            y_all = labels["y"].to_numpy()
            train_idx, holdout_idx = _split(y_all.astype(int), settings)
            y, y_holdout = y_all[train_idx].astype(int), y_all[holdout_idx].astype(int)
            folds = stratified_folds(y, settings.cv_folds, settings.seed)
            fold_of = np.full(len(y_all), -1, dtype=np.int8)
            for i, (_, evaluated) in enumerate(folds):
                fold_of[train_idx[evaluated]] = i
            self.train_index = _inverse(train_idx, len(y_all))
            self.holdout_index = _inverse(holdout_idx, len(y_all))
        with step(progress, "validate + encode rows"):
            encoded = self._encode(frame, contract, fold_of)
        results = [self._tune(family, encoded, y, folds, trials) for family in families]
        best = max(results, key=lambda r: r.best_score)
        with step(progress, "calibrate + threshold"):
            calibration = choose_calibration(best.oof, y, settings.seed)
            oof = calibration.calibrator(best.oof) if calibration.calibrator else best.oof
            economics = ProfitModel(
                settings.offer_cost, settings.acceptance_rate, settings.customer_value
            )
            values = labels["value"].to_numpy() if settings.customer_value_column else None
            train_values = None if values is None else values[train_idx]
            choice = choose_threshold(y, oof, settings.threshold_strategy, economics, train_values)
            cv_metrics = classification_metrics(y, oof, choice.threshold)
        with step(progress, f"fit {best.family} (Spark)"):
            fitting = encoded.where(encoded.fold >= 0)
            family = spark_family(best.family)
            fitted = family.fit(fitting, best.best_params, settings.seed, len(train_idx))
            width = FeatureEncoder(contract).width
            model = ScoringModel(
                contract,
                family.to_native(fitted, fitting, width),
                best.family,
                choice.threshold,
                calibration.calibrator,
                params=best.best_params,
            )
        with step(progress, "evaluate holdout"):
            p_holdout = self._holdout_probabilities(encoded, model, len(holdout_idx))
            holdout_metrics = classification_metrics(y_holdout, p_holdout, choice.threshold)
        with step(progress, "explain + plot"):
            artifacts = Path(tempfile.mkdtemp(prefix="churnops-train-"))
            importance = _explain(model, self._explain_rows(encoded), artifacts, settings.seed)
            plots.evaluation_plots(y_holdout, p_holdout, choice.threshold, artifacts, best.family)
            holdout_values = None if values is None else values[holdout_idx]
            profit = profit_curve(
                y_holdout, p_holdout, choice.thresholds, economics, holdout_values
            )
            plots.curve_plot(
                choice.thresholds,
                profit,
                choice.threshold,
                "campaign profit (holdout)",
                artifacts / "profit_curve.png",
            )
        with step(progress, "sample logged frames"):
            train_frame, holdout_frame = self._samples(frame, contract, train_idx, holdout_idx)
        return TrainResult(
            model=model,
            family=best.family,
            params=best.best_params,
            cv=cv_metrics,
            holdout=holdout_metrics,
            family_scores={r.family: r.best_score for r in results},
            calibration=calibration,
            threshold_strategy=settings.threshold_strategy,
            trials=[t for r in results for t in r.trials],
            chosen_trials={best.family: best.best_trial},
            blend=None,
            importance=importance,
            train_frame=train_frame,
            holdout_frame=holdout_frame,
            validation=ValidationReport(rows=len(y_all), columns=len(frame.columns) - 1, issues=[]),
            dataset_digest=digest,
            artifacts_dir=artifacts,
            seconds=0.0,
            settings={
                "seed": settings.seed,
                "holdout": settings.holdout,
                "cv_folds": settings.cv_folds,
                "trials": trials,
                "families": ",".join(r.family for r in results),
                "ensemble": False,
                "metric": settings.metric,
                "threshold_strategy": settings.threshold_strategy,
                "rows_train": len(train_idx),
                "rows_holdout": len(holdout_idx),
            },
        )

    def _labels(self, frame: Any, contract: DataContract) -> pd.DataFrame:
        """Return every row's label (and customer value) by position; refuse bad labels.

        Labels are read by the contract's own rule (``target_series``) on the workers;
        the driver gets one label (and one value) per row, in row order.
        """
        value_column = self.settings.customer_value_column
        if value_column is not None and value_column not in frame.columns:
            raise ConfigError(f"customer_value_column {value_column!r} is not in the data.")
        target = contract.target
        columns = [ORDER, target] + ([value_column] if value_column else [])

        def label_rows(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                value = (
                    pd.to_numeric(batch[value_column], errors="coerce").fillna(0.0)
                    if value_column
                    else 0.0
                )
                yield pd.DataFrame(
                    {
                        "id": batch[ORDER],
                        "y": contract.target_series(batch[target]).to_numpy(),
                        "value": value,
                    }
                )

        rows = frame.select(*columns).mapInPandas(label_rows, "id long, y double, value double")
        found = rows.toPandas()
        self.positions = Positions.from_ids(found["id"].to_numpy())
        position = self.positions.of(found["id"].to_numpy())
        ordered = found.iloc[np.argsort(position)].reset_index(drop=True)
        bad = np.flatnonzero(ordered["y"].isna().to_numpy())
        if len(bad):
            shown = ", ".join(str(r + 1) for r in bad[:ERRORS_SHOWN])
            labels = ", ".join(map(str, contract.labels))
            raise DataValidationError(
                f"{target!r}: {len(bad)} row(s) have no label or one not among {labels}: "
                f"rows {shown}" + (" (and more)" if len(bad) > ERRORS_SHOWN else "") + ".",
                {"rows": [int(r) + 1 for r in bad[:50]]},
            )
        if contract.id and contract.id in frame.columns:
            _unique_ids(frame, contract.id)
        return ordered

    def _encode(self, frame: Any, contract: DataContract, fold_of: np.ndarray) -> Any:
        """Validate and encode every row on the workers; stage the features as Parquet.

        The encoder is the local one, so each row gets exactly the local features; a row
        the contract's rules refuse fails the training, as locally, naming its row.
        """
        from pyspark.ml.functions import array_to_vector
        from pyspark.sql import functions as F

        offsets = self.positions
        folds = self.spark.sparkContext.broadcast(fold_of)
        features = [c for c in contract.feature_names if c in frame.columns]
        needed = [ORDER, contract.target, *features]
        if contract.id:
            needed.append(contract.id)

        def encode(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            encoder = FeatureEncoder(contract)
            fold = folds.value
            for batch in batches:
                pos = offsets.of(batch.pop(ORDER).to_numpy())
                judged = encoder.judge(batch.reset_index(drop=True))
                X = encoder.matrix(judged)
                y = contract.target_series(batch[contract.target]).to_numpy()
                problems = [None] * len(batch)
                for row, found in judged.problems.items():
                    problems[row] = "; ".join(p.reason for p in found)
                yield pd.DataFrame(
                    {
                        "pos": pos,
                        "fold": fold[pos].astype(np.int32),
                        "label": y,
                        "features": list(X),
                        "problem": problems,
                    }
                )

        staged = self.scratch / "encoded"
        frame.select(*needed).mapInPandas(encode, ENCODED_SCHEMA).write.parquet(str(staged))
        encoded = self.spark.read.parquet(str(staged))
        refused = encoded.where(F.col("problem").isNotNull())
        count = refused.count()
        if count:
            first = refused.orderBy("pos").limit(ERRORS_SHOWN).collect()
            shown = "; ".join(f"row {r.pos + 1}: {r.problem}" for r in first)
            raise DataValidationError(
                f"{count} row(s) break the contract: {shown}"
                + (" (and more)" if count > ERRORS_SHOWN else "")
                + ".",
                {"rows": [int(r.pos) + 1 for r in first]},
            )
        return encoded.select("pos", "fold", LABEL, array_to_vector("features").alias(FEATURES))

    def _tune(
        self,
        family: Any,
        encoded: Any,
        y: np.ndarray,
        folds: list[tuple[np.ndarray, np.ndarray]],
        trials: int,
    ) -> FamilyResult:
        """Search the family's local space with Optuna; each trial is a k-fold CV on Spark."""
        settings = self.settings

        def evaluate(trial: Any, params: dict[str, Any]) -> tuple[float, np.ndarray]:
            oof = np.full(len(y), np.nan)
            scores = []
            for k, (fit_idx, _) in enumerate(folds):
                fitting = encoded.where((encoded.fold >= 0) & (encoded.fold != k))
                fitted = family.fit(fitting, params, settings.seed, len(fit_idx))
                index, p = self._predict(fitted, encoded.where(encoded.fold == k))
                oof[index] = p
                scores.append(score_metric(settings.metric, y[index], p))
            return float(np.mean(scores)), oof

        return search(
            get_candidate(family.name),
            evaluate,
            trials=trials,
            seed=settings.seed,
            progress=self.progress,
            engine="Spark",
        )

    def _predict(self, fitted: Any, rows: Any) -> tuple[np.ndarray, np.ndarray]:
        """Return the training-order index and Spark's churn probability of ``rows``."""
        from pyspark.ml.functions import vector_to_array

        scored = fitted.transform(rows).select("pos", vector_to_array("probability")[1].alias("p"))
        found = scored.toPandas()
        return self.train_index[found["pos"].to_numpy()], found["p"].to_numpy()

    def _holdout_probabilities(self, encoded: Any, model: ScoringModel, rows: int) -> np.ndarray:
        """Score the holdout rows with the registered ScoringModel itself, on the workers."""
        from pyspark.ml.functions import vector_to_array

        def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                X = np.stack(batch["x"].to_numpy()) if len(batch) else np.zeros((0, 1))
                yield pd.DataFrame({"pos": batch["pos"], "p": model.probabilities(X)})

        holdout = encoded.where(encoded.fold == -1)
        arrays = holdout.select("pos", vector_to_array(FEATURES).alias("x"))
        found = arrays.mapInPandas(score, "pos long, p double").toPandas()
        p = np.full(rows, np.nan)
        p[self.holdout_index[found["pos"].to_numpy()]] = found["p"].to_numpy()
        return p

    def _explain_rows(self, encoded: Any) -> np.ndarray:
        """Return up to :data:`EXPLAIN_ROWS` encoded holdout rows for the SHAP summary."""
        from pyspark.ml.functions import vector_to_array

        holdout = encoded.where(encoded.fold == -1)
        total = int(np.sum(self.holdout_index >= 0))
        share = min(1.0, 1.5 * EXPLAIN_ROWS / max(total, 1))
        sample = holdout.sample(fraction=share, seed=self.settings.seed).limit(EXPLAIN_ROWS)
        rows = sample.select(vector_to_array(FEATURES).alias("x")).toPandas()
        return np.stack(rows["x"].to_numpy())

    def _samples(
        self,
        frame: Any,
        contract: DataContract,
        train_idx: np.ndarray,
        holdout_idx: np.ndarray,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Return uniform samples of the training and holdout rows, cleaned as locally."""
        rng = np.random.default_rng(self.settings.seed)
        keep = np.zeros(len(train_idx) + len(holdout_idx), dtype=np.int8)
        for mark, index in ((1, train_idx), (2, holdout_idx)):
            if len(index) > SAMPLE_ROWS:
                index = rng.choice(index, SAMPLE_ROWS, replace=False)
            keep[index] = mark
        marks = self.spark.sparkContext.broadcast(keep)
        offsets = self.positions
        schema = frame.drop(ORDER).schema.add("_churnops_sample", "byte").add("_pos", "long")

        def pick(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                pos = offsets.of(batch.pop(ORDER).to_numpy())
                mark = marks.value[pos]
                chosen = mark > 0
                yield batch[chosen].assign(_churnops_sample=mark[chosen], _pos=pos[chosen])

        found = frame.mapInPandas(pick, schema).toPandas().sort_values("_pos")
        marks_found = found.pop("_churnops_sample").to_numpy()
        found = found.drop(columns="_pos")
        train_frame, holdout_frame = (
            validate(found[marks_found == mark], contract).frame.reset_index(drop=True)
            for mark in (1, 2)
        )
        return train_frame, holdout_frame


@contextmanager
def _without_codegen(spark: Any, frame: Any) -> Iterator[None]:
    """Run a small table's contract aggregations without whole-stage code generation.

    Each holds a dozen aggregates per column; on the demo table compiling them took
    longer than running them (first pass 75 s against 33 s on a busy local[2]). Above
    :data:`CODEGEN_ROWS` rows the compiled code's speed per row wins, and it stays on.
    """
    key = "spark.sql.codegen.wholeStage"
    before = spark.conf.get(key)
    if frame.count() >= CODEGEN_ROWS:
        yield
        return
    spark.conf.set(key, "false")
    try:
        yield
    finally:
        spark.conf.set(key, before)


def _inverse(index: np.ndarray, n: int) -> np.ndarray:
    """Return each position's place in ``index`` (-1: not in it)."""
    inverse = np.full(n, -1, dtype=np.int64)
    inverse[index] = np.arange(len(index))
    return inverse


def _required_columns(frame: Any, contract: DataContract) -> None:
    """Refuse a table without the contract's features, id or target (as validation does)."""
    required = [c.name for c in contract.features]
    if contract.id:
        required.append(contract.id)
    required.append(contract.target)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        issue = Issue(
            severity="error",
            check="missing_columns",
            message=f"Missing required column(s): {', '.join(missing)}.",
            count=len(missing),
            examples=missing,
        )
        report = ValidationReport(rows=0, columns=len(frame.columns) - 1, issues=[issue])
        raise DataValidationError(
            "The training data breaks its contract:\n" + report.summary(),
            {"issues": [issue.model_dump()]},
        )


def _unique_ids(frame: Any, id_column: str) -> None:
    """Refuse customer ids that occur twice (a group-by on the workers)."""
    from pyspark.sql import functions as F

    repeated = (
        frame.where(F.col(id_column).isNotNull())
        .groupBy(id_column)
        .count()
        .where(F.col("count") > 1)
    )
    found = repeated.limit(ERRORS_SHOWN + 1).collect()
    if found:
        shown = ", ".join(repr(r[id_column]) for r in found[:ERRORS_SHOWN])
        raise DataValidationError(
            f"{id_column!r}: ids occur more than once: {shown}"
            + (" (and more)" if len(found) > ERRORS_SHOWN else "")
            + ".",
            {"ids": [str(r[id_column]) for r in found[:ERRORS_SHOWN]]},
        )
