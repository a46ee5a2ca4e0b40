"""Per-row codes over a column's distinct values, without hashing when the dtype allows it.

Validation and encoding check or look up each *distinct* value once and let the rows pick
their answer up by code. ``pd.factorize`` hashes every cell to find those values, which is
most of the cost of validating and encoding a million rows; yet batch scoring reads
Parquet, where string columns already arrive as pandas ``category`` (the codes exist) and
flags as small integers (the value minus the minimum is a code). :func:`factorize` uses
those and hashes only other dtypes (text read from CSV, API records).

Customer ids are the other way round: nearly every value is distinct, so batch scoring
keeps them as Arrow strings (never one Python object per cell) and finds repeats through
64-bit hashes of the Arrow buffers (:func:`string_hashes`, :func:`has_repeats`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
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


def one_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Return ``values`` as one contiguous Arrow array (chunks are concatenated)."""
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def string_hashes(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Return a 64-bit hash of every string (nulls hash like the empty string).

    Hand-written (FNV-1a over the Arrow buffers, then a splitmix64 finaliser so the low
    bits spread evenly across buckets) because neither pyarrow nor numpy offers a hash of
    Arrow strings; ``pd.util.hash_array`` needs one Python object per cell, ~5x the cost.
    Equal strings always hash equally; callers confirm a shared hash against the values.
    """
    values = one_array(values)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = pc.cast(values, pa.string())
    offset_type = np.int64 if pa.types.is_large_string(values.type) else np.int32
    _, offsets, data = values.buffers()
    first = values.offset  # a sliced array starts inside its buffers
    starts = np.frombuffer(offsets, dtype=offset_type)[first : first + len(values) + 1]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.empty(0, np.uint8)
    return _fnv1a(starts, raw)


def has_repeats(values: pa.Array | pa.ChunkedArray) -> bool:
    """Return True when a non-null string occurs more than once (exact, hash-assisted)."""
    values = one_array(values).drop_null()
    hashes = np.sort(string_hashes(values))
    if not (hashes[1:] == hashes[:-1]).any():
        return False
    return len(pc.unique(values)) < len(values)  # a shared hash: compare the strings


@njit(cache=True, nogil=True)
def _fnv1a(offsets: Any, data: Any) -> Any:
    out = np.empty(len(offsets) - 1, dtype=np.uint64)
    for i in range(len(out)):
        h = np.uint64(0xCBF29CE484222325)
        for j in range(offsets[i], offsets[i + 1]):
            h = (h ^ np.uint64(data[j])) * np.uint64(0x100000001B3)
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        out[i] = h ^ (h >> np.uint64(31))
    return out
