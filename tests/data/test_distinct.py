"""factorize gives pandas' codes-over-distinct-values for every dtype, hashing only text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from churnops.data import distinct
from churnops.data.distinct import factorize, has_repeats, string_hashes


def _decoded(codes: np.ndarray, uniques: np.ndarray) -> list[object]:
    return [None if c < 0 else uniques[c] for c in codes.tolist()]


CASES = {
    "category with unused levels and missing cells": pd.Series(
        pd.Categorical(["b", None, "a", "b"], categories=["z", "a", "b", "y"])
    ),
    "category, every level used": pd.Series(pd.Categorical(["x", "y", "x"])),
    "category, all missing": pd.Series(pd.Categorical([None, None], categories=["a"])),
    "int64 flags": pd.Series([0, 1, 1, 0], dtype=np.int64),
    "int64 with offset and gaps": pd.Series([-7, 5, -7, 12], dtype=np.int64),
    "uint8": pd.Series([3, 3, 9], dtype=np.uint8),
    "bool": pd.Series([True, True, True]),
    "int64 too wide to count": pd.Series([0, 10**12, 0], dtype=np.int64),
    "float with NaN": pd.Series([1.0, np.nan, 0.0, 1.0]),
    "object text": pd.Series(["Yes", None, " No", "Yes"], dtype=object),
}


@pytest.mark.parametrize("name", list(CASES))
def test_codes_decode_to_the_values_like_pandas(name: str) -> None:
    """Every row decodes to its value, missing is -1, and only occurring values are listed."""
    values = CASES[name]
    codes, uniques = factorize(values)
    expected_codes, expected_uniques = pd.factorize(values, use_na_sentinel=True)
    assert _decoded(codes, uniques) == _decoded(expected_codes, np.asarray(expected_uniques))
    assert sorted(map(str, uniques)) == sorted(map(str, np.asarray(expected_uniques)))
    assert uniques.dtype == np.asarray(expected_uniques).dtype  # label_key sees the same types


def test_integer_and_category_columns_are_not_hashed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parquet's category strings and integer flags take the counting path, not pandas'."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pd.factorize called")

    monkeypatch.setattr(pd, "factorize", refuse)
    factorize(CASES["category with unused levels and missing cells"])
    factorize(CASES["int64 flags"])
    factorize(CASES["bool"])
    with pytest.raises(AssertionError):
        factorize(CASES["object text"])


def test_string_hashes_depend_on_the_text_only() -> None:
    """Equal strings hash equally whatever the array: slices, chunks, large_string."""
    values = pa.array(["C-1", "C-2", "", None, "C-1", "ü-ß"])
    hashes = string_hashes(values)
    assert hashes.dtype == np.uint64
    assert len(hashes) == 6
    assert hashes[0] == hashes[4]
    assert len(set(hashes[:3].tolist())) == 3
    assert hashes[3] == hashes[2]  # a null hashes like the empty string
    np.testing.assert_array_equal(string_hashes(values.slice(4)), hashes[4:])
    chunked = pa.chunked_array([values.slice(0, 2), values.slice(2)])
    np.testing.assert_array_equal(string_hashes(chunked), hashes)
    np.testing.assert_array_equal(string_hashes(values.cast(pa.large_string())), hashes)
    many = string_hashes(pa.array([f"c{i:07d}" for i in range(100_000)]))
    assert len(np.unique(many)) == 100_000
    assert np.bincount((many % 64).astype(np.int64)).min() > 1300  # buckets fill evenly


def test_has_repeats_is_exact_and_ignores_nulls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Repeats of non-null text only; a shared hash alone is not a repeat."""
    assert has_repeats(pa.array(["a", "b", "a"]))
    assert not has_repeats(pa.array(["a", "b", None, None]))
    assert not has_repeats(pa.array([], pa.string()))
    monkeypatch.setattr(distinct, "_fnv1a", lambda offsets, data: np.zeros(len(offsets) - 1))
    assert not has_repeats(pa.array(["a", "b", "c"]))  # every hash collides: strings decide
    assert has_repeats(pa.array(["a", "b", "b"]))
