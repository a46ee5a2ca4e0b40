"""The model families Spark trains, each converted to the local trainer's native estimator.

Logistic regression is Spark MLlib's; gradient boosting is ``xgboost.spark`` (distributed
XGBoost). Both sample their parameters from the local families' own search spaces
(:mod:`churnops.training.candidates`), and both end as the estimators a local training
registers (:class:`LogisticEstimator`, :class:`XGBoostEstimator`), so the API, batch and
monitoring cannot tell where a model was trained.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from churnops.errors import ConfigError
from churnops.scoring.estimators import Estimator, LogisticEstimator, XGBoostEstimator

FEATURES = "features"
LABEL = "label"
LOGISTIC_MAX_ITER = 100
LOGISTIC_TOL = 1e-6


@dataclass(frozen=True)
class SparkFamily:
    """How Spark fits one family and how the fitted model becomes a native estimator."""

    name: str
    fit: Callable[[Any, dict[str, Any], int, int], Any]
    """Return a fitted Spark model for ``(data, params, seed, rows)``."""
    to_native: Callable[[Any, Any, int], Estimator]
    """Return ``(model, data, width)`` as a native, data-only scoring estimator."""


def _logistic_fit(data: Any, params: dict[str, Any], seed: int, rows: int) -> Any:
    """Fit MLlib's logistic regression with scikit-learn's objective for the same ``C``.

    scikit-learn minimises ``C * sum(log loss) + |w|^2 / 2`` on standardised features;
    MLlib minimises ``mean(log loss) + regParam * |w|^2 / 2`` (standardised too), so
    ``regParam = 1 / (C * rows)`` is the same optimum.
    """
    from pyspark.ml.classification import LogisticRegression

    model = LogisticRegression(
        featuresCol=FEATURES,
        labelCol=LABEL,
        family="binomial",
        regParam=1.0 / (params["C"] * rows),
        elasticNetParam=0.0,
        standardization=True,
        maxIter=LOGISTIC_MAX_ITER,
        tol=LOGISTIC_TOL,
    )
    return model.fit(data)


def _logistic_native(model: Any, data: Any, width: int) -> LogisticEstimator:
    """Store the coefficients on standardised features, centred on the training mean.

    The native estimator computes ``sum((x - mean) / scale * coef) + intercept``; with
    MLlib's raw coefficients ``w`` and intercept ``b`` that is ``coef = w * scale`` and
    ``intercept = b + w . mean``, the same margin, and the intercept is the mean row's
    margin, which linear SHAP takes as its base value.
    """
    from pyspark.ml.stat import Summarizer
    from pyspark.sql import functions as F

    stats = data.select(Summarizer.metrics("mean", "std").summary(F.col(FEATURES)).alias("s"))
    row = stats.first()["s"]
    mean = np.asarray(row["mean"].toArray(), dtype=np.float64)
    std = np.asarray(row["std"].toArray(), dtype=np.float64)
    scale = np.where(std > 0, std, 1.0)
    w = np.asarray(model.coefficients.toArray(), dtype=np.float64)
    return LogisticEstimator(
        tuple(float(v) for v in mean),
        tuple(float(v) for v in scale),
        tuple(float(v) for v in w * scale),
        float(model.intercept + w @ mean),
    )


def _xgboost_fit(data: Any, params: dict[str, Any], seed: int, rows: int) -> Any:
    """Fit distributed XGBoost, one worker per Spark core (barrier tasks)."""
    from xgboost.spark import SparkXGBClassifier

    workers = max(1, int(data.sparkSession.sparkContext.defaultParallelism))
    model = SparkXGBClassifier(
        features_col=FEATURES,
        label_col=LABEL,
        num_workers=workers,
        tree_method="hist",
        random_state=seed,
        **params,
    )
    return model.fit(data)


def _xgboost_native(model: Any, data: Any, width: int) -> XGBoostEstimator:
    """Keep the booster (UBJSON in the artifact) and check the compiled walk against it."""
    from churnops.scoring.xgboost_trees import compile_xgboost

    booster = model.get_booster()
    rounds = (0, 0)  # no early stopping: every round, as XGBClassifier.predict_proba
    compiled = compile_xgboost(booster, width, rounds) is not None
    return XGBoostEstimator(booster.copy(), width, rounds, compiled)


SPARK_FAMILIES: dict[str, SparkFamily] = {
    f.name: f
    for f in (
        SparkFamily("logistic", _logistic_fit, _logistic_native),
        SparkFamily("xgboost", _xgboost_fit, _xgboost_native),
    )
}


def spark_family(name: str) -> SparkFamily:
    """Return the Spark family called ``name``, or a ConfigError naming those there are."""
    try:
        return SPARK_FAMILIES[name]
    except KeyError:
        known = ", ".join(SPARK_FAMILIES)
        raise ConfigError(
            f"--engine spark trains {known}; {name!r} is a local family (use --engine local)."
        ) from None
