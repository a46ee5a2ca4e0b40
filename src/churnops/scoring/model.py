"""The scoring model: contract + encoder + native estimator + calibrator + threshold.

This is the one scoring path. Its pieces are all data (see :mod:`churnops.scoring.artifact`
for how they are saved): the estimator is a native one from
:mod:`churnops.scoring.estimators`, the calibrator one from
:mod:`churnops.scoring.calibration`. Batch jobs call :meth:`ScoringModel.predict_frame`
or encode and call :meth:`ScoringModel.probabilities`; the API scores one row through
:class:`churnops.scoring.fast.FastScorer`, which ends in the same arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from churnops.data.contract import DataContract
from churnops.features.encoder import FeatureEncoder
from churnops.scoring.calibration import Calibrator, finish
from churnops.scoring.estimators import Estimator


@dataclass
class ScoringModel:
    """Everything needed to turn a customer record into a probability, a flag and reasons."""

    contract: DataContract
    estimator: Estimator
    family: str
    threshold: float
    calibrator: Calibrator | None = None
    params: dict[str, Any] = field(default_factory=dict)
    encoder: FeatureEncoder = field(init=False)

    def __post_init__(self) -> None:
        self.encoder = FeatureEncoder(self.contract)

    def finish(self, margins: np.ndarray) -> np.ndarray:
        """Turn log-odds into calibrated probabilities (elementwise: any batch size, same bits)."""
        return finish(margins, self.calibrator)

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """Return calibrated churn probabilities for an encoded matrix."""
        if len(X) == 0:
            return np.zeros(0)
        return self.finish(self.estimator.margins(X))

    def predict_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """Score a table: the id, ``probability``, ``churn`` (at the threshold) and ``error``.

        Rows are judged by the contract's column rules, as the API and batch scoring judge
        them: a refused row keeps its place with no probability or flag and ``error``
        saying ``field: message, sent value`` for each problem (one bad row does not fail
        the others, as in a batch run); accepted rows have ``error`` None.
        """
        judged = self.encoder.judge(df)
        n = len(df)
        p = np.full(n, np.nan)
        errors: list[str | None] = [None] * n
        good = np.flatnonzero(~judged.bad)
        p[good] = self.probabilities(self.encoder.matrix(judged, rows=good))
        for row, problems in judged.problems.items():
            errors[row] = "; ".join(problem.reason for problem in problems)
        churn = pd.array(np.where(p >= self.threshold, 1, 0), dtype="Int64")
        churn[np.isnan(p)] = pd.NA
        out = pd.DataFrame({"probability": p, "churn": churn, "error": errors})
        if self.contract.id and self.contract.id in df.columns:
            out.insert(0, self.contract.id, df[self.contract.id].to_numpy())
        return out

    def contributions(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return per-source-column log-odds contributions and the bias for each row."""
        raw = self.estimator.contributions(X)
        return self.encoder.group_by_source(raw[:, :-1]), raw[:, -1]

    def reasons(self, X: np.ndarray, top: int = 3) -> list[list[dict[str, Any]]]:
        """Return each row's ``top`` strongest reasons: feature, signed contribution, value.

        Reasons are ordered by absolute contribution; a positive contribution pushes the
        customer towards churn. ``value`` is the customer's own value of the feature
        (:meth:`FeatureEncoder.decode`), so a person reads "contract = Month-to-month
        raises risk" rather than a bare column name.
        """
        grouped, _ = self.contributions(X)
        names = self.encoder.source_columns
        decode = self.encoder.decode
        order = np.argsort(-np.abs(grouped), axis=1)[:, :top]
        return [
            [
                {
                    "feature": names[j],
                    "contribution": round(float(contributions[j]), 6),
                    "value": decode(row, j),
                }
                for j in idx.tolist()
            ]
            for row, contributions, idx in zip(X, grouped, order, strict=True)
        ]
