"""Score one chunk: validate, route invalid rows to rejections, predict, explain the riskiest.

This is the whole per-row work of a batch run, shared by the pandas engine (called per
chunk) and the Spark engine (called per Arrow batch inside ``mapInPandas``), so both
engines produce the same scores by construction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnops.data.validation import validate
from churnops.errors import DataValidationError
from churnops.scoring.model import ScoringModel

# Validation errors that are about the table, not rows: nothing in the chunk can be scored.
TABLE_ERRORS = {"missing_columns"}
SCORE_COLUMNS = ["customer_id", "score", "high_risk", "reasons"]
REJECT_COLUMNS = ["row_number", "customer_id", "reason"]


@dataclass
class ChunkResult:
    """What one chunk produced: scored rows and rejected rows."""

    scores: pd.DataFrame  # SCORE_COLUMNS; reasons is JSON text or None
    rejected: pd.DataFrame  # REJECT_COLUMNS

    @property
    def rows_in(self) -> int:
        """Return how many source rows the chunk held."""
        return len(self.scores) + len(self.rejected)


class TopScores:
    """The ``k`` highest high-risk scores seen so far, to decide who gets reasons.

    Reasons (SHAP contributions) cost far more than a prediction, so a run explains only
    rows that are among the ``k`` riskiest seen *so far*. Every row that ends up in the
    run's final top ``k`` was in the running top ``k`` when its chunk was scored, so it has
    reasons; the work stays near ``k * (1 + ln(rows / k))`` rows instead of every row.
    """

    def __init__(self, k: int) -> None:
        self.k = k
        self.best = np.empty(0, dtype=np.float64)

    def cutoff(self, scores: np.ndarray) -> float:
        """Add ``scores`` and return the score a row needs to be in the running top ``k``."""
        if self.k <= 0:
            return np.inf
        merged = np.concatenate([self.best, scores])
        if len(merged) > self.k:
            merged = np.partition(merged, len(merged) - self.k)[-self.k :]
        self.best = merged
        return float(merged.min()) if len(merged) >= self.k else -np.inf


def score_chunk(
    model: ScoringModel, frame: pd.DataFrame, offset: int, top: TopScores
) -> ChunkResult:
    """Validate and score ``frame`` (rows ``offset..``); invalid rows become rejections."""
    contract = model.contract
    if contract.target in frame.columns:  # labels are not needed to score; skip their checks
        frame = frame.drop(columns=[contract.target])
    checked = validate(frame, contract, require_target=False)
    fatal = [i for i in checked.report.errors if i.check in TABLE_ERRORS]
    if fatal:
        raise DataValidationError(
            "The source cannot be scored: " + " ".join(i.message for i in fatal),
            {"issues": [i.model_dump() for i in fatal]},
        )
    ids = _ids(frame, contract.id, offset)
    bad = np.zeros(len(frame), dtype=bool)
    if checked.bad_rows:
        bad[list(checked.bad_rows)] = True
    positions = sorted(checked.bad_rows)
    rejected = pd.DataFrame(
        {
            "row_number": np.asarray(positions, dtype=np.int64) + offset,
            "customer_id": ids[positions] if contract.id else [None] * len(positions),
            "reason": ["; ".join(checked.bad_rows[p]) for p in positions],
        },
        columns=REJECT_COLUMNS,
    )
    good = checked.frame.loc[~bad]
    X = model.encoder.transform(good)
    p = model.probabilities(X) if len(good) else np.empty(0)
    high = p >= model.threshold
    cutoff = top.cutoff(p[high])
    reasons = np.full(len(good), None, dtype=object)
    explain = np.flatnonzero(high & (p >= cutoff))
    if len(explain):
        explained = model.reasons(X[explain])
        reasons[explain] = [json.dumps(r, separators=(",", ":")) for r in explained]
    scores = pd.DataFrame(
        {"customer_id": ids[~bad], "score": p, "high_risk": high, "reasons": reasons},
        columns=SCORE_COLUMNS,
    )
    return ChunkResult(scores, rejected)


def _ids(frame: pd.DataFrame, id_column: str | None, offset: int) -> np.ndarray:
    """Return customer ids as text; without an id column, the source row number."""
    if id_column and id_column in frame.columns:
        values = frame[id_column]
        if pd.api.types.infer_dtype(values, skipna=True) == "string":
            return values.astype(object).where(values.notna(), None).to_numpy(dtype=object)
        return np.array([None if pd.isna(v) else _id_text(v) for v in values], dtype=object)
    return np.array([str(offset + i) for i in range(len(frame))], dtype=object)


def _id_text(value: object) -> str:
    """Write whole-number ids (read as floats from CSV with gaps) without a trailing .0."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
