"""The encoder: one matrix from tables of any dtype and from records, by the contract's rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnops.data.contract import DataContract, infer_contract
from churnops.errors import DataValidationError
from churnops.features import FeatureEncoder
from churnops.scoring import RecordCodec
from tests.factories import make_customers


@pytest.fixture(scope="module")
def contract() -> DataContract:
    """A contract whose tenure imputes and whose contract column ignores unseen levels."""
    contract = infer_contract(make_customers(300), "churn", "customer_id")
    for spec in contract.columns:
        if spec.name in ("tenure", "contract", "partner", "internet_service"):
            spec.policy.missing = "impute"
        if spec.name == "contract":
            spec.policy.unseen = "ignore"
    return contract


@pytest.fixture(scope="module")
def encoder(contract: DataContract) -> FeatureEncoder:
    return FeatureEncoder(contract)


def _records(df: pd.DataFrame) -> list[dict]:
    return [
        {k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
        for r in df.to_dict("records")
    ]


def test_table_and_record_paths_agree(encoder: FeatureEncoder, contract: DataContract) -> None:
    """transform(df), the codec's column-wise batch and its one-record path: the same bits."""
    df = make_customers(120, seed=4).drop(columns="churn")
    codec = RecordCodec(contract)
    records = _records(df)
    table = encoder.transform(df)
    assert codec.encode_matrix(records).tobytes() == table.tobytes()
    assert np.array([codec.encode(r) for r in records]).tobytes() == table.tobytes()


def test_policy_imputes_and_ignores_as_the_contract_says(encoder: FeatureEncoder) -> None:
    """Missing tenure becomes the median, an unseen contract no level, 'Yes' a 1."""
    names = encoder.feature_names
    df = make_customers(3, seed=1).drop(columns="churn").astype(object)
    df.loc[0, ["contract", "tenure", "partner"]] = ["Weekly", None, "Yes"]
    row = encoder.transform(df)[0]
    assert row[[i for i, n in enumerate(names) if n.startswith("contract=")]].sum() == 0
    assert row[names.index("partner")] == 1.0
    assert row[names.index("tenure")] == encoder.rules[encoder.source_columns.index("tenure")].fill


def test_transform_refuses_rows_that_break_the_rules(encoder: FeatureEncoder) -> None:
    """A table with text in a numeric column is an error naming the row, field and value."""
    df = make_customers(5, seed=1).drop(columns="churn").astype(object)
    df.loc[2, "monthly_charges"] = "lots"
    with pytest.raises(DataValidationError, match=r"row 3: monthly_charges: expects a number") as e:
        encoder.transform(df)
    assert e.value.details["rows"] == [3]  # counted from 1, like the message


def test_group_by_source_sums_one_hot_columns(encoder: FeatureEncoder) -> None:
    """Per-column contributions sum back into one value per source column."""
    contrib = np.ones((2, encoder.width))
    grouped = encoder.group_by_source(contrib)
    contract_width = sum(n.startswith("contract=") for n in encoder.feature_names)
    assert grouped[0, encoder.source_columns.index("contract")] == contract_width
    assert grouped.sum() == 2 * encoder.width


def _messy_customers() -> pd.DataFrame:
    """Customers with padded, blank-like, unseen and missing cells the policy accepts."""
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
    """Parquet's category dtypes, CSV's object text and JSON records: the same bits."""
    text = _messy_customers()
    categorical = text.copy()
    for name in ("contract", "partner", "internet_service", "payment_method"):
        categorical[name] = categorical[name].astype("category").cat.add_categories(["Unused"])
    expected = RecordCodec(contract).encode_matrix(_records(text))
    names = encoder.feature_names
    assert expected[4, [i for i, n in enumerate(names) if n.startswith("contract=")]].sum() == 0
    assert expected[6, names.index("partner")] == 1.0
    for frame in (text, categorical):
        assert encoder.transform(frame).tobytes() == expected.tobytes()


def test_flag_dtypes_encode_identically(encoder: FeatureEncoder) -> None:
    """A 0/1 flag as int64, bool, float or text gives the same column."""
    df = make_customers(50, seed=2)
    flags = df["senior_citizen"].to_numpy()
    column = encoder.feature_names.index("senior_citizen")
    expected = encoder.transform(df)[:, column]
    for values in (flags.astype(bool), flags.astype(float), flags.astype(str).astype(object)):
        got = encoder.transform(df.assign(senior_citizen=values))[:, column]
        assert got.tobytes() == expected.tobytes()


def test_empty_table_encodes_to_no_rows(encoder: FeatureEncoder) -> None:
    """Zero rows give a (0, width) matrix, not an error."""
    assert encoder.transform(make_customers(10).iloc[:0]).shape == (0, encoder.width)


def test_a_reused_buffer_encodes_like_a_fresh_matrix(encoder: FeatureEncoder) -> None:
    """matrix(out=) writes every cell: a dirty, larger buffer gives the same rows."""
    df = make_customers(80, seed=6)
    buffer = np.full((100, encoder.width), 7.0)
    rows = encoder.transform(df, out=buffer)
    assert rows.shape == (80, encoder.width)
    assert np.shares_memory(rows, buffer)
    np.testing.assert_array_equal(rows, encoder.transform(df))
    small = np.empty((10, encoder.width))
    assert not np.shares_memory(encoder.transform(df, out=small), small)  # too small: fresh


def test_decode_reads_each_value_back_as_the_contract_writes_it(
    encoder: FeatureEncoder,
) -> None:
    """Numbers (ints for integer columns), boolean levels as stored, the category or None."""
    df = _messy_customers()
    X = encoder.transform(df)
    column = encoder.source_columns.index
    fill = encoder.rules[column("tenure")].fill
    for i in (0, 4, 6, 8):
        row, source = X[i], df.iloc[i]
        assert encoder.decode(row, column("monthly_charges")) == source["monthly_charges"]
        tenure = encoder.decode(row, column("tenure"))
        assert tenure == (fill if i == 8 else source["tenure"])  # imputed: the median
        assert isinstance(tenure, int) == float(tenure).is_integer()
        assert encoder.decode(row, column("senior_citizen")) == source["senior_citizen"]
    assert encoder.decode(X[0], column("contract")) == df.loc[0, "contract"]
    assert encoder.decode(X[4], column("contract")) is None  # unseen, ignored: no level
    assert encoder.decode(X[6], column("partner")) == "Yes"  # " yes " as the contract has it
    assert encoder.decode(X[5], column("partner")) == "No"  # missing, imputed as false
