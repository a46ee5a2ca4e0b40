"""factorize gives pandas' codes-over-distinct-values for every dtype, hashing only text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnops.data.distinct import factorize


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
