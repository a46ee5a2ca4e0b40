"""Per-row codes over a column's distinct values, without hashing when the dtype allows it.

Validation and encoding check or look up each *distinct* value once and let the rows pick
their answer up by code. ``pd.factorize`` hashes every cell to find those values, which is
most of the cost of validating and encoding a million rows; yet batch scoring reads
Parquet, where string columns already arrive as pandas ``category`` (the codes exist) and
flags as small integers (the value minus the minimum is a code). :func:`factorize` uses
those and hashes only other dtypes (text read from CSV, API records).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numba import njit

MAX_INTEGER_SPAN = 1 << 16  # wider integer ranges are hashed: a bincount would cost more


def factorize(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(codes, uniques)`` like ``pd.factorize(values, use_na_sentinel=True)``.

    ``uniques[codes[i]]`` is row ``i``'s value and code -1 a missing cell, as with pandas;
    ``uniques`` holds only values that occur, but (for ``category`` and integer columns)
    in sorted or category order rather than order of first appearance.
    """
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        return _used_only(codes, np.asarray(dtype.categories.to_numpy()))
    if isinstance(dtype, np.dtype) and dtype.kind in "biu" and len(values):
        array = values.to_numpy()
        if dtype.kind == "b":
            return _used_only(array.view(np.uint8), np.array([False, True]))
        low, high = int(array.min()), int(array.max())
        if (dtype.kind == "i" or dtype.itemsize < 8) and high - low < MAX_INTEGER_SPAN:
            offsets = array.astype(np.int64) - low if low else array
            levels = np.arange(low, high + 1, dtype=np.int64).astype(dtype)
            return _used_only(offsets, levels)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes, np.asarray(uniques)


def _used_only(codes: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop the levels no row uses (a categorical may list more than occur)."""
    used = np.flatnonzero(_counts(codes, len(levels)))
    if len(used) == len(levels):
        return codes, levels
    remap = np.full(len(levels) + 1, -1, dtype=np.int64)  # the last slot keeps -1 at -1
    remap[used] = np.arange(len(used))
    return remap[codes], levels[used]


@njit(cache=True, nogil=True)
def _counts(codes: Any, size: int) -> Any:
    """Count the rows of each code, skipping -1 (``np.bincount`` refuses negatives)."""
    counts = np.zeros(size, dtype=np.int64)
    for code in codes:
        if code >= 0:
            counts[code] += 1
    return counts
