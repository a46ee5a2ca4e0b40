"""The scoring model: contract + encoder + estimator + calibrator + threshold in one object.

This is the one fast scoring path. Batch jobs call :meth:`ScoringModel.predict_frame`;
the API calls :meth:`ScoringModel.predict_records`, which skips pandas entirely because a
one-row DataFrame costs more than the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from churnops.data.contract import DataContract
from churnops.features.encoder import FeatureEncoder
from churnops.training.calibration import Calibrator
from churnops.training.candidates import get_candidate


@dataclass
class ScoringModel:
    """Everything needed to turn a customer record into a probability, a flag and reasons."""

    contract: DataContract
    estimator: Any
    family: str
    threshold: float
    calibrator: Calibrator | None = None
    params: dict[str, Any] = field(default_factory=dict)
    encoder: FeatureEncoder = field(init=False)

    def __post_init__(self) -> None:
        self.encoder = FeatureEncoder(self.contract)

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """Return calibrated churn probabilities for an encoded matrix."""
        raw = self.estimator.predict_proba(X)[:, 1]
        return self.calibrator(raw) if self.calibrator is not None else raw

    def predict_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """Score a table: ``probability``, ``churn`` (0/1 at the threshold), and the id."""
        p = self.probabilities(self.encoder.transform(df))
        out = pd.DataFrame({"probability": p, "churn": (p >= self.threshold).astype(int)})
        if self.contract.id and self.contract.id in df.columns:
            out.insert(0, self.contract.id, df[self.contract.id].to_numpy())
        return out

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Return probabilities for JSON-like records (the online hot path)."""
        return self.probabilities(self.encoder.transform_records(records))

    def contributions(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return per-source-column log-odds contributions and the bias for each row."""
        raw = get_candidate(self.family).contributions(self.estimator, X)
        return self.encoder.group_by_source(raw[:, :-1]), raw[:, -1]

    def reasons(self, X: np.ndarray, top: int = 3) -> list[list[dict[str, Any]]]:
        """Return each row's ``top`` strongest reasons: feature and signed contribution.

        Reasons are ordered by absolute contribution; a positive contribution pushes the
        customer towards churn.
        """
        grouped, _ = self.contributions(X)
        names = self.encoder.source_columns
        order = np.argsort(-np.abs(grouped), axis=1)[:, :top]
        return [
            [{"feature": names[j], "contribution": round(float(row[j]), 6)} for j in idx]
            for row, idx in zip(grouped, order, strict=True)
        ]
