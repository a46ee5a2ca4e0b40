"""The feature encoder: contract columns -> one float matrix, shared by train, serve and batch.

The encoder is *derived from the contract*, not fitted separately: the contract already
holds what an encoder learns (category levels, medians for imputation, boolean levels),
so the artifact cannot disagree with its own validation rules.

Numeric columns pass through (missing -> training median); booleans become 0/1 (missing
-> 0); categoricals are one-hot over the contract's levels (unseen or missing -> all zeros).
Two code paths produce the same matrix: :meth:`transform` is vectorised for tables, and
:meth:`transform_records` is plain-Python dict lookups for a few JSON records, where
building a DataFrame would cost more than the model itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from churnops.data.contract import BLANK_STRINGS, DataContract, label_key
from churnops.data.distinct import factorize
from churnops.errors import ScoringInputError


@dataclass(frozen=True)
class _Block:
    """One source column's slice of the encoded matrix."""

    name: str
    kind: str
    start: int
    width: int
    fill: float = 0.0  # numeric imputation value
    index: Mapping[str, int] | None = None  # categorical level -> offset, boolean key -> 0/1


class FeatureEncoder:
    """Turn contract feature columns into a float64 matrix, for tables and single records."""

    def __init__(self, contract: DataContract) -> None:
        self.source_columns: list[str] = []
        self.feature_names: list[str] = []
        self.blocks: list[_Block] = []
        start = 0
        for spec in contract.features:
            if spec.kind == "numeric":
                block = _Block(spec.name, "numeric", start, 1, fill=spec.median)
                names = [spec.name]
            elif spec.kind == "boolean":
                false_level, true_level = spec.levels or [0, 1]
                index = {label_key(false_level): 0, label_key(true_level): 1}
                block = _Block(spec.name, "boolean", start, 1, index=index)
                names = [spec.name]
            else:
                levels = list(spec.categories or {})
                index = {level: i for i, level in enumerate(levels)}
                block = _Block(spec.name, "categorical", start, len(levels), index=index)
                names = [f"{spec.name}={level}" for level in levels]
            self.blocks.append(block)
            self.source_columns.append(spec.name)
            self.feature_names.extend(names)
            start += block.width
        self.width = start
        # Which source column each encoded column belongs to, for summing contributions.
        self.source_of = np.repeat(np.arange(len(self.blocks)), [b.width for b in self.blocks])

    @cached_property
    def _layout(self) -> tuple[list[_Block], np.ndarray, list[_Block]]:
        """Return the one-column blocks, their matrix columns, and the one-hot blocks.

        Derived on first use rather than in ``__init__``: registered models are pickles,
        and one pickled before this existed must encode tables too.
        """
        dense = [b for b in self.blocks if b.kind != "categorical"]
        columns = np.array([b.start for b in dense], dtype=np.int64)
        return dense, columns, [b for b in self.blocks if b.kind == "categorical"]

    def transform(self, df: pd.DataFrame, out: np.ndarray | None = None) -> np.ndarray:
        """Encode a table (columns may be raw text; the contract's coercions apply).

        ``out``: a float64 buffer of at least ``len(df)`` rows and ``width`` columns to
        write into (the result is a view of its first rows). Batch scoring passes one
        buffer for every chunk: a fresh matrix of a 100,000-row chunk is ~30 MB of new
        pages, and the kernel faulting them in cost more than encoding them.
        """
        # Each source column becomes one contiguous row of ``dense`` (numbers, 0/1 flags) or
        # of ``hot`` (the encoded column holding a categorical's 1, -1 for none); a compiled
        # loop then writes the C-ordered matrix the models read row by row. Filling the
        # matrix column by column from numpy would touch every cache line of it once per
        # column, and a column-major buffer needs a full transpose at the end.
        n = len(df)
        dense_blocks, dense_columns, hot_blocks = self._layout
        dense = np.empty((len(dense_blocks), n), dtype=np.float64)
        hot = np.empty((len(hot_blocks), n), dtype=np.int32)
        for k, block in enumerate(dense_blocks):
            col = df[block.name]
            if block.kind == "numeric":
                values = _numeric(col)
                np.copyto(dense[k], values)
                np.copyto(dense[k], block.fill, where=np.isnan(values))
            else:
                # Look each distinct value up once; missing -> 0.
                true_key = _true_key(block)
                codes, uniques = factorize(col)
                lookup = np.array([float(label_key(u) == true_key) for u in uniques] + [0.0])
                np.take(lookup, codes, out=dense[k])
        for k, block in enumerate(hot_blocks):
            # Look each distinct value up once; unseen or missing -> -1 (all zeros).
            index = block.index or {}
            codes, uniques = factorize(df[block.name])
            columns = [block.start + index[s] if s in index else -1 for s in map(_level, uniques)]
            np.take(np.array([*columns, -1], dtype=np.int32), codes, out=hot[k])
        if out is None or out.shape[0] < n or out.shape[1:] != (self.width,):
            out = np.empty((n, self.width), dtype=np.float64)
        rows = out[:n]
        _write_rows(dense, dense_columns, hot, rows)
        return rows

    def transform_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Encode JSON-like records with dict lookups (the online hot path)."""
        out = np.zeros((len(records), self.width), dtype=np.float64)
        for i, record in enumerate(records):
            row = out[i]
            for block in self.blocks:
                value = record.get(block.name)
                if block.kind == "numeric":
                    row[block.start] = _number(value, block.fill, block.name)
                elif block.kind == "boolean":
                    if value is not None and label_key(value) == _true_key(block):
                        row[block.start] = 1.0
                elif value is not None:
                    offset = block.index.get(_level(value))  # type: ignore[union-attr]
                    if offset is not None:
                        row[block.start + offset] = 1.0
        return out

    def group_by_source(self, contributions: np.ndarray) -> np.ndarray:
        """Sum per-encoded-column contributions into per-source-column contributions."""
        grouped = np.zeros((contributions.shape[0], len(self.blocks)), dtype=np.float64)
        np.add.at(grouped.T, self.source_of, contributions[:, : self.width].T)
        return grouped


@njit(cache=True, nogil=True)
def _write_rows(dense: Any, columns: Any, hot: Any, out: Any) -> None:
    """Write each row of ``out`` from the per-column buffers, one row at a time.

    Each row is zeroed just before it is written (it is in cache then), so ``out`` may be
    uninitialised or a reused buffer.
    """
    for i in range(out.shape[0]):
        row = out[i]
        row[:] = 0.0
        for k in range(dense.shape[0]):
            row[columns[k]] = dense[k, i]
        for k in range(hot.shape[0]):
            column = hot[k, i]
            if column >= 0:
                row[column] = 1.0


def _level(value: Any) -> str:
    """Return the text a categorical value is looked up by among the contract's levels."""
    return str(value).strip()


def _true_key(block: _Block) -> str:
    return next(k for k, v in (block.index or {}).items() if v == 1)


def _numeric(col: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=np.float64, na_value=np.nan)
    text = col.astype("string").str.strip()
    text = text.mask(text.str.lower().isin(BLANK_STRINGS))
    return pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _number(value: Any, fill: float, name: str) -> float:
    if value is None:
        return fill
    if isinstance(value, int | float):
        return fill if value != value else float(value)  # NaN check without numpy
    text = str(value).strip()
    if text.lower() in BLANK_STRINGS:
        return fill
    try:
        return float(text)
    except ValueError:
        raise ScoringInputError(
            f"Field {name!r} expects a number, got {value!r}.", {"field": name}
        ) from None
