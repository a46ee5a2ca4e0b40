"""The feature encoder: contract columns -> one float matrix, shared by train, serve and batch.

The encoder is *derived from the contract*, not fitted separately: the contract already
holds what an encoder learns (category levels, medians for imputation, boolean levels), and
its column rules (:mod:`churnops.data.rules`) decide every value, so the artifact cannot
disagree with its own validation. Numbers pass through (missing -> training median when the
policy imputes); booleans become 0/1; categoricals are one-hot over the contract's levels.

Tables are judged once (:func:`churnops.data.judged.judge_frame`) and written into the
matrix by a compiled loop; JSON records take :class:`churnops.scoring.RecordCodec`, which
asks the same rules one value at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from churnops.data.contract import DataContract, Scalar
from churnops.data.judged import JudgedFrame, judge_frame
from churnops.data.rules import ColumnRule, column_rules
from churnops.data.validation import rows_text
from churnops.errors import DataValidationError

MAX_PROBLEMS_SHOWN = 5


class FeatureEncoder:
    """Turn contract feature columns into a float64 matrix."""

    def __init__(self, contract: DataContract) -> None:
        self.contract = contract
        self.rules: list[ColumnRule] = column_rules(contract)
        self.source_columns = [r.name for r in self.rules]
        self.feature_names = [name for r in self.rules for name in r.feature_names]
        self.width = sum(r.width for r in self.rules)
        # Which source column each encoded column belongs to, for summing contributions.
        self.source_of = np.repeat(np.arange(len(self.rules)), [r.width for r in self.rules])
        dense = [r for r in self.rules if r.kind != "categorical"]
        self._dense_columns = np.array([r.start for r in dense], dtype=np.int64)
        self._integer = [bool(spec.integer) for spec in contract.features]

    def judge(self, df: pd.DataFrame) -> JudgedFrame:
        """Judge ``df`` by the contract's rules (see :func:`judge_frame`)."""
        return judge_frame(df, self.contract, self.rules)

    def matrix(
        self, judged: JudgedFrame, rows: np.ndarray | None = None, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Write the encoded matrix of a judged table (only ``rows``, when given).

        ``out``: a float64 buffer of at least that many rows and ``width`` columns to write
        into (the result is a view of its first rows). Batch scoring passes one buffer for
        every chunk: a fresh matrix of a 100,000-row chunk is ~30 MB of new pages, and the
        kernel faulting them in cost more than encoding them.
        """
        take = np.arange(judged.rows) if rows is None else np.asarray(rows, dtype=np.int64)
        n = len(take)
        if out is None or out.shape[0] < n or out.shape[1:] != (self.width,):
            out = np.empty((n, self.width), dtype=np.float64)
        X = out[:n]
        _write_rows(judged.dense, self._dense_columns, judged.hot, take, X)
        return X

    def transform(self, df: pd.DataFrame, out: np.ndarray | None = None) -> np.ndarray:
        """Encode a table whose rows all pass the rules, or raise naming the rows that fail.

        Training, promotion and monitoring call this on tables validated before; batch
        scoring, which must keep going past bad rows, uses :meth:`judge` and :meth:`matrix`.
        Rows are counted from 1 (the first data row), in the message and ``details["rows"]``.
        """
        judged = self.judge(df)
        if judged.problems:
            rows = sorted(judged.problems)
            shown = "; ".join(
                f"{rows_text([r])}: " + ", ".join(p.reason for p in judged.problems[r])
                for r in rows[:MAX_PROBLEMS_SHOWN]
            )
            more = len(rows) - MAX_PROBLEMS_SHOWN
            raise DataValidationError(
                f"{len(rows)} row(s) break the contract: {shown}"
                + (f" (and {more} more)" if more > 0 else "")
                + ".",
                {"rows": [r + 1 for r in rows[:50]]},
            )
        return self.matrix(judged, out=out)

    def decode(self, row: np.ndarray, column: int) -> Scalar | None:
        """Return source column ``column``'s value in one encoded row, as the contract writes it.

        Reasons name the value behind a contribution ("contract = Month-to-month"), read
        back from the row the model scored, so it is what the model saw: the number
        (imputed or clipped as scored; whole numbers of an integer column as ints), a
        boolean's level as stored, the category whose one-hot column is 1 (None: no level).
        """
        rule = self.rules[column]
        if rule.kind == "categorical":
            hits = np.flatnonzero(row[rule.start : rule.start + rule.width])
            return rule.allowed[hits[0]] if len(hits) else None
        number = float(row[rule.start])
        if rule.kind == "boolean":
            return rule.levels[int(number)]  # encoded as exactly 0.0 or 1.0
        return int(number) if self._integer[column] and number.is_integer() else number

    def group_by_source(self, contributions: np.ndarray) -> np.ndarray:
        """Sum per-encoded-column contributions into per-source-column contributions."""
        grouped = np.zeros((contributions.shape[0], len(self.rules)), dtype=np.float64)
        np.add.at(grouped.T, self.source_of, contributions[:, : self.width].T)
        return grouped


@njit(cache=True, nogil=True)
def _write_rows(dense: Any, columns: Any, hot: Any, take: Any, out: Any) -> None:
    """Write row ``i`` of ``out`` from column buffers' position ``take[i]``, row by row.

    Each source column is one contiguous row of ``dense`` (numbers, 0/1 flags) or of
    ``hot`` (the encoded column holding a categorical's 1, -1 for none). Filling the
    C-ordered matrix column by column would touch every cache line of it once per column.
    Each row is zeroed just before it is written (it is in cache then), so ``out`` may be
    uninitialised or a reused buffer.
    """
    for i in range(out.shape[0]):
        j = take[i]
        row = out[i]
        row[:] = 0.0
        for k in range(dense.shape[0]):
            row[columns[k]] = dense[k, j]
        for k in range(hot.shape[0]):
            column = hot[k, j]
            if column >= 0:
                row[column] = 1.0
