"""Per-distinct-value mapping gives the same answers as per-cell mapping."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnops.data.contract import clean_text, infer_contract, label_key, map_unique
from churnops.features.encoder import FeatureEncoder
from tests.factories import make_customers


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


def test_table_and_record_encoding_agree_on_messy_input() -> None:
    """The vectorised table path and the per-record path encode messy cells the same."""
    df = make_customers(200, seed=4)
    encoder = FeatureEncoder(infer_contract(df, "churn", "customer_id"))
    messy = df.drop(columns="churn").astype(object)
    messy.loc[0, "contract"] = " Two year "
    messy.loc[1, "contract"] = None
    messy.loc[2, "internet_service"] = "Satellite"
    messy.loc[3, "senior_citizen"] = None
    messy.loc[4, "tenure"] = " "
    messy.loc[5, "partner"] = "Yes"
    table = encoder.transform(messy)
    records = encoder.transform_records(messy.to_dict("records"))
    np.testing.assert_array_equal(table, records)
