"""Score one chunk: validate, route invalid rows to rejections, predict, explain the riskiest.

This is the whole per-row work of a batch run, shared by the pandas engine (called per
chunk) and the Spark engine (called per Arrow batch inside ``mapInPandas``), so both
engines produce the same scores by construction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnops.data.contract import DataContract
from churnops.data.distinct import one_array
from churnops.data.judged import JudgedFrame
from churnops.data.validation import validate
from churnops.errors import DataValidationError
from churnops.features.segments import SegmentKey, segment_codes, segment_key
from churnops.scoring.fast import FastScorer
from churnops.scoring.model import ScoringModel

# Validation errors that are about the table, not rows: nothing in the chunk can be scored.
TABLE_ERRORS = {"missing_columns"}
SCORE_COLUMNS = ["customer_id", "score", "high_risk"]
# row_number: the rejected row's 0-based position in the source (what people call row 1 is
# 0), as stored in ``rejected_rows``; text for people says ``row_number + 1``.
REJECT_COLUMNS = ["row_number", "customer_id", "reason"]


@dataclass(frozen=True)
class RowExtras:
    """What a run stores beside each score for the dashboard: segment code, customer value.

    ``segment`` only when the run has segment columns, ``value`` only when a value column
    is configured: a run without them writes (and binds) nothing more than before.
    """

    segments: SegmentKey = field(default_factory=SegmentKey)
    value_column: str | None = None

    @classmethod
    def build(
        cls, contract: DataContract, segment_columns: list[str] | None, value_column: str | None
    ) -> RowExtras:
        """Return a run's extras; columns that cannot serve are skipped with a warning.

        A value column must hold numbers: a categorical or boolean feature cannot.
        (Whether a column of the source holds numbers at all is known after scoring.)
        """
        key = segment_key(contract, segment_columns)
        spec = next((c for c in contract.features if c.name == value_column), None)
        if spec is not None and spec.kind != "numeric":
            warning = (
                f"customer_value_column {value_column!r} is a {spec.kind} feature, not a "
                "number: no customer values stored."
            )
            return cls(key.warn(warning), None)
        return cls(key, value_column)

    @property
    def fields(self) -> list[pa.Field]:
        """Return the extra score columns a chunk result carries, in storage order."""
        return [
            *([pa.field("segment", pa.int64())] if self.segments.segments else []),
            *([pa.field("value", pa.float64())] if self.value_column else []),
        ]

    @property
    def columns(self) -> list[str]:
        """Return the names of :attr:`fields`."""
        return [f.name for f in self.fields]

    def compute(
        self, frame: pd.DataFrame, judged: JudgedFrame, model: ScoringModel, rows: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        """Return the extra columns of the scored ``rows`` (all rows when None)."""
        out = {}
        if self.segments.segments:
            out["segment"] = segment_codes(self.segments, judged, model.encoder.rules, rows)
        if self.value_column:
            n = len(frame) if rows is None else len(rows)
            if self.value_column in frame.columns:
                values = customer_values(frame[self.value_column])
                out["value"] = values if rows is None else values[rows]
            else:
                out["value"] = np.full(n, np.nan)
        return out


def customer_values(cells: pd.Series) -> np.ndarray:
    """Return a source column's cells as float64: NaN (stored as NULL) where not a number.

    Numbers written as text (CSV, Spark's CSV reader) are read; flags, categories and
    infinities are not customer values.
    """
    if pd.api.types.is_bool_dtype(cells.dtype) or isinstance(cells.dtype, pd.CategoricalDtype):
        return np.full(len(cells), np.nan)
    numbers = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    numbers[~np.isfinite(numbers)] = np.nan
    return numbers


@dataclass
class ChunkResult:
    """What one chunk produced: scored rows and rejected rows."""

    scores: pd.DataFrame  # SCORE_COLUMNS, then the run's RowExtras columns
    rejected: pd.DataFrame  # REJECT_COLUMNS (row_number 0-based)

    @property
    def rows_in(self) -> int:
        """Return how many source rows the chunk held."""
        return len(self.scores) + len(self.rejected)


class TopCandidates:
    """Keep the ``k`` riskiest high-risk rows with their encoded features; explain once.

    Explanations (TreeSHAP) cost ~30x a prediction, so instead of explaining rows that
    *might* end in the top ``k`` chunk by chunk, the candidates' feature rows (``k`` x
    width floats) are kept and exactly the final top ``k`` are explained at the end,
    ordered as the ranks are (score desc, customer id asc). Spark tasks keep their own and
    send them to the driver (:meth:`frame`), which merges them with :meth:`offer`.
    """

    def __init__(self, k: int) -> None:
        self.k = k
        self.ids = np.empty(0, dtype=object)
        self.scores = np.empty(0, dtype=np.float64)
        self.X: np.ndarray | None = None

    def offer(self, ids: pa.Array, p: np.ndarray, X: np.ndarray, high: np.ndarray) -> None:
        """Keep those of the rows (ids, probabilities, encoded features) that enter the top k."""
        rows = np.flatnonzero(high)
        if len(self.scores) >= self.k:  # only rows at or above the current k-th can enter
            rows = rows[p[rows] >= self.scores[-1]]
        if self.k > 0 and len(rows):
            if len(rows) > self.k:  # only the chunk's own top k (and ties) can enter
                kth = np.partition(p[rows], len(rows) - self.k)[len(rows) - self.k]
                rows = rows[p[rows] >= kth]
            chosen = ids.take(rows).to_numpy(zero_copy_only=False)
            ids_ = np.concatenate([self.ids, chosen])
            scores = np.concatenate([self.scores, p[rows]])
            feats = X[rows] if self.X is None else np.concatenate([self.X, X[rows]])
            keep = np.lexsort((ids_, -scores))[: self.k]  # score desc, then id, as ranks
            self.ids, self.scores, self.X = ids_[keep], scores[keep], feats[keep]

    def frame(self) -> pd.DataFrame:
        """Return the candidates as rows: ``customer_id``, ``score``, ``features`` (bytes)."""
        features = [] if self.X is None else [row.tobytes() for row in self.X]
        return pd.DataFrame({"customer_id": self.ids, "score": self.scores, "features": features})

    def offer_frame(self, frame: pd.DataFrame) -> None:
        """Merge candidates sent as :meth:`frame` rows (by another task) into these."""
        if frame.empty:
            return
        X = np.frombuffer(b"".join(frame["features"]), dtype=np.float64).reshape(len(frame), -1)
        p = frame["score"].to_numpy(dtype=np.float64)
        ids = pa.array(frame["customer_id"], type=pa.string())
        self.offer(ids, p, X, np.ones(len(frame), dtype=bool))

    def explain(self, model: ScoringModel) -> dict[str, str]:
        """Return JSON reasons of the final top ``k`` high-risk rows, by customer id."""
        if self.X is None or not len(self.ids):
            return {}
        return dict(zip(self.ids, explain_rows(model, self.X), strict=True))


def explain_rows(model: ScoringModel, X: np.ndarray) -> list[str]:
    """Return each encoded row's top reasons as compact JSON."""
    return [json.dumps(r, separators=(",", ":")) for r in model.reasons(X)]


def score_chunk(
    scorer: FastScorer,
    frame: pd.DataFrame,
    offset: int,
    top: TopCandidates,
    buffer: np.ndarray | None = None,
    extras: RowExtras | None = None,
) -> ChunkResult:
    """Validate and score ``frame`` (rows ``offset..``); invalid rows become rejections.

    Probabilities come from the champion's :class:`FastScorer` (the API's exact fast path:
    compiled LightGBM trees, XGBoost inplace predict, a folded logistic dot product),
    built once per run or Spark task. The riskiest rows are offered to ``top``, to be
    explained once the run's top is known. ``buffer`` (see :func:`encode_buffer`) is
    reused for the encoded rows, which do not outlive the call. ``extras`` adds the
    scored rows' segment codes and customer values, read from the same judged columns.
    """
    model = scorer.model
    contract = model.contract
    if contract.target in frame.columns:  # labels are not needed to score; skip their checks
        frame = frame.drop(columns=[contract.target])
    checked = validate(
        frame, contract, require_target=False, rules=model.encoder.rules, clean=False
    )
    fatal = [i for i in checked.report.errors if i.check in TABLE_ERRORS]
    if fatal:
        raise DataValidationError(
            "The source cannot be scored: " + " ".join(i.message for i in fatal),
            {"issues": [i.model_dump() for i in fatal]},
        )
    ids = _ids(frame, contract.id, offset)
    positions = np.array(sorted(checked.bad_rows), dtype=np.int64)
    rejected_ids = ids.take(positions).to_pylist() if contract.id else [None] * len(positions)
    for i, position in enumerate(positions.tolist()):  # a refused id is not stored as sent
        if any(p.field == contract.id for p in checked.judged.problems.get(position, [])):
            rejected_ids[i] = None
    rejected = pd.DataFrame(
        {
            "row_number": positions + offset,
            "customer_id": rejected_ids,
            "reason": ["; ".join(checked.bad_rows[p]) for p in positions],
        },
        columns=REJECT_COLUMNS,
    )
    good = None
    if len(positions):
        keep = np.ones(len(frame), dtype=bool)
        keep[positions] = False
        good = np.flatnonzero(keep)
    # Encoded from the columns validation judged: the table is read by the rules once.
    X = model.encoder.matrix(checked.judged, rows=good, out=buffer)
    p = scorer.many(X)
    high = p >= model.threshold
    good_ids = ids.take(good) if good is not None else ids
    top.offer(good_ids, p, X, high)
    scores = pd.DataFrame(
        {
            "customer_id": pd.arrays.ArrowExtensionArray(good_ids),
            "score": p,
            "high_risk": high,
            **(extras.compute(frame, checked.judged, model, good) if extras else {}),
        }
    )
    return ChunkResult(scores, rejected)


def encode_buffer(model: ScoringModel, rows: int) -> np.ndarray:
    """Return a buffer for :func:`score_chunk` to encode chunks of up to ``rows`` rows into."""
    return np.empty((rows, model.encoder.width), dtype=np.float64)


def _ids(frame: pd.DataFrame, id_column: str | None, offset: int) -> pa.Array:
    """Return customer ids as Arrow strings; without an id column, the source row number.

    Arrow, not Python objects: ids are only filtered, spilled, hashed and written, and
    Parquet sources hand them over as Arrow already (no copy).
    """
    if id_column and id_column in frame.columns:
        values = frame[id_column]
        if isinstance(values.dtype, pd.ArrowDtype) and pa.types.is_string(
            values.dtype.pyarrow_dtype
        ):
            return one_array(pa.array(values))
        if pd.api.types.is_integer_dtype(values.dtype):  # numeric ids: Arrow writes the text
            return pc.cast(pa.array(values), pa.string())
        if pd.api.types.is_float_dtype(values.dtype):  # whole numbers read as floats (gaps)
            numbers = pa.array(values, from_pandas=True)
            whole = pc.all(pc.equal(pc.floor(numbers), numbers)).as_py() is not False
            return pc.cast(pc.cast(numbers, pa.int64()) if whole else numbers, pa.string())
        if pd.api.types.infer_dtype(values, skipna=True) == "string":
            return pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
        return pa.array([None if pd.isna(v) else _id_text(v) for v in values], type=pa.string())
    return pa.array(np.arange(offset, offset + len(frame)).astype(str))


def _id_text(value: object) -> str:
    """Write whole-number ids (read as floats from CSV with gaps) without a trailing .0."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
