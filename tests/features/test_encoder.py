"""The encoder: one matrix from tables and from records, derived from the contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnops.data.contract import DataContract, infer_contract
from churnops.data.validation import validate
from churnops.errors import ScoringInputError
from churnops.features import FeatureEncoder
from tests.factories import loyal_customer, make_customers


@pytest.fixture(scope="module")
def contract() -> DataContract:
    return infer_contract(make_customers(300), "churn", "customer_id")


@pytest.fixture(scope="module")
def encoder(contract: DataContract) -> FeatureEncoder:
    return FeatureEncoder(contract)


def test_table_and_record_paths_agree(encoder: FeatureEncoder) -> None:
    """transform(df) and transform_records(records) give the same matrix."""
    df = make_customers(120, seed=4)
    np.testing.assert_array_equal(
        encoder.transform(df), encoder.transform_records(df.to_dict("records"))
    )


def test_one_hot_booleans_and_imputation(encoder: FeatureEncoder) -> None:
    """Categoricals are one-hot, unseen/missing categories are all zeros, numbers impute medians."""
    names = encoder.feature_names
    record = {**loyal_customer(), "contract": "Weekly", "tenure": None, "partner": "Yes"}
    row = encoder.transform_records([record])[0]
    assert row[[i for i, n in enumerate(names) if n.startswith("contract=")]].sum() == 0
    assert row[names.index("partner")] == 1.0
    tenure_median = encoder.blocks[encoder.source_columns.index("tenure")].fill
    assert row[names.index("tenure")] == tenure_median


def test_numbers_as_text_are_parsed_and_bad_text_is_refused(encoder: FeatureEncoder) -> None:
    """'12.5' is a number; 'lots' in a numeric field is a ScoringInputError naming the field."""
    row = encoder.transform_records([{**loyal_customer(), "monthly_charges": "12.5"}])[0]
    assert row[encoder.feature_names.index("monthly_charges")] == 12.5
    with pytest.raises(ScoringInputError, match="monthly_charges"):
        encoder.transform_records([{**loyal_customer(), "monthly_charges": "lots"}])


def test_group_by_source_sums_one_hot_columns(encoder: FeatureEncoder) -> None:
    """Per-column contributions sum back into one value per source column."""
    contrib = np.ones((2, encoder.width))
    grouped = encoder.group_by_source(contrib)
    contract_width = sum(n.startswith("contract=") for n in encoder.feature_names)
    assert grouped[0, encoder.source_columns.index("contract")] == contract_width
    assert grouped.sum() == 2 * encoder.width


def _messy_customers() -> pd.DataFrame:
    """Customers with padded, blank-like, unseen and missing cells in every kind of column."""
    df = make_customers(200, seed=7).drop(columns="churn")
    df = df.astype({"contract": object, "partner": object, "internet_service": object})
    df.loc[1, "contract"] = " Two year "
    df.loc[2, "contract"] = "NA"
    df.loc[3, "contract"] = None
    df.loc[4, "contract"] = "Weekly"
    df.loc[5, "partner"] = None
    df.loc[6, "partner"] = " yes "
    df.loc[7, "internet_service"] = " "
    df.loc[8, "tenure"] = None
    return df


def test_category_object_and_record_inputs_encode_identically(
    encoder: FeatureEncoder, contract: DataContract
) -> None:
    """Parquet's category/int dtypes, CSV's object text and JSON records: the same bits."""
    text = _messy_customers()
    categorical = text.copy()
    for name in ("contract", "partner", "internet_service", "payment_method"):
        categorical[name] = categorical[name].astype("category").cat.add_categories(["Unused"])
    records = [
        {k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
        for r in text.to_dict("records")
    ]
    expected = encoder.transform_records(records)
    names = encoder.feature_names
    assert expected[4, [i for i, n in enumerate(names) if n.startswith("contract=")]].sum() == 0
    assert expected[6, names.index("partner")] == 1.0
    for frame in (text, categorical):
        assert encoder.transform(frame).tobytes() == expected.tobytes()
        checked = validate(frame, contract, require_target=False).frame
        assert encoder.transform(checked).tobytes() == expected.tobytes()


def test_flag_dtypes_encode_identically(encoder: FeatureEncoder) -> None:
    """A 0/1 flag as int64, bool, float (with a gap) or text gives the same column."""
    df = make_customers(50, seed=2)
    flags = df["senior_citizen"].to_numpy()
    column = encoder.feature_names.index("senior_citizen")
    expected = encoder.transform(df)[:, column]
    for values in (flags.astype(bool), flags.astype(float), flags.astype(str).astype(object)):
        got = encoder.transform(df.assign(senior_citizen=values))[:, column]
        assert got.tobytes() == expected.tobytes()
    gap = encoder.transform(df.assign(senior_citizen=np.where(flags == 1, 1.0, np.nan)))
    assert gap[:, column].tolist() == expected.tolist()  # missing -> 0, like a 0


def test_empty_table_encodes_to_no_rows(encoder: FeatureEncoder) -> None:
    """Zero rows give a (0, width) matrix, not an error."""
    assert encoder.transform(make_customers(10).iloc[:0]).shape == (0, encoder.width)


def test_a_reused_buffer_encodes_like_a_fresh_matrix(encoder: FeatureEncoder) -> None:
    """transform(out=) writes every cell: a dirty, larger buffer gives the same rows."""
    df = make_customers(80, seed=6)
    buffer = np.full((100, encoder.width), 7.0)
    rows = encoder.transform(df, out=buffer)
    assert rows.shape == (80, encoder.width)
    assert np.shares_memory(rows, buffer)
    np.testing.assert_array_equal(rows, encoder.transform(df))
    small = np.empty((10, encoder.width))
    assert not np.shares_memory(encoder.transform(df, out=small), small)  # too small: fresh
