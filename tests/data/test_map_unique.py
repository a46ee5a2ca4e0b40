"""Per-distinct-value mapping gives the same answers as per-cell mapping."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnops.data.contract import clean_text, label_key, map_unique


def test_map_unique_equals_a_cell_by_cell_map_with_missing_as_none() -> None:
    """It maps every cell like Series.map and leaves missing cells None."""
    values = pd.Series([1, 0, None, 1.0, "yes", True, np.nan, "No "], dtype=object)
    got = map_unique(values, label_key)
    expected = values.map(label_key, na_action="ignore")
    assert got.where(got.notna(), None).tolist() == expected.where(expected.notna(), None).tolist()


def test_clean_text_strips_and_blanks() -> None:
    """It strips text and turns blank-like cells into None."""
    values = pd.Series([" DSL", "NA", " ", None, "Fiber optic"])
    assert clean_text(values).tolist() == ["DSL", None, None, None, "Fiber optic"]
