"""Segment codes: derived from the contract, computed from judged columns, read back in SQL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from churnops.data.contract import DataContract, infer_contract
from churnops.errors import DataError
from churnops.features import FeatureEncoder
from churnops.features.segments import (
    MAX_COLUMNS,
    MISSING_LEVEL,
    Segment,
    SegmentKey,
    segment_codes,
    segment_key,
)
from tests.factories import make_customers

DERIVED = ["senior_citizen", "partner", "contract", "internet_service", "payment_method"]


@pytest.fixture(scope="module")
def contract() -> DataContract:
    """The demo-like contract; contract ignores unseen levels, so it can have none."""
    contract = infer_contract(make_customers(300), "churn", "customer_id")
    for spec in contract.columns:
        if spec.name == "contract":
            spec.policy.unseen = "ignore"
    return contract


def test_derived_segments_are_the_low_cardinality_columns_in_contract_order(
    contract: DataContract,
) -> None:
    """Booleans and categoricals (numbers never), levels in the encoder's order."""
    key = segment_key(contract)
    assert key.columns == DERIVED
    assert key.warnings == ()
    levels = key.levels()
    assert levels["senior_citizen"] == ["0", "1"]  # [false, true] as stored
    assert levels["partner"] == ["No", "Yes"]
    spec = next(c for c in contract.features if c.name == "contract")
    assert levels["contract"] == [*spec.categories, MISSING_LEVEL]  # type: ignore[misc]
    assert MISSING_LEVEL not in levels["internet_service"]  # rejected when missing: never


def test_configured_columns_that_cannot_segment_are_skipped_with_a_warning(
    contract: DataContract,
) -> None:
    """A number, an unknown name and a repeat: kept in order, each refusal said once."""
    key = segment_key(contract, ["contract", "tenure", "nope", "contract", "partner"])
    assert key.columns == ["contract", "partner"]
    assert len(key.warnings) == 2
    assert "'tenure' is not a categorical" in key.warnings[0]
    assert "'nope' is not a feature" in key.warnings[1]


def test_more_than_the_maximum_is_cut_with_a_warning() -> None:
    """One usable column too many: the first MAX_COLUMNS are kept, the last is named."""
    frame = pd.DataFrame({f"c{i}": ["a", "b"] * 20 for i in range(MAX_COLUMNS + 1)})
    frame["y"] = ["yes", "no"] * 20
    contract = infer_contract(frame, "y")
    names = [f"c{i}" for i in range(MAX_COLUMNS + 1)]
    assert segment_key(contract).columns == names[:MAX_COLUMNS]
    key = segment_key(contract, names)
    assert key.columns == names[:MAX_COLUMNS]
    assert f"'c{MAX_COLUMNS}'" in key.warnings[0]


def test_codes_decode_to_each_rows_levels(contract: DataContract) -> None:
    """Every judged row's code reads back as its own levels (unseen contract: missing)."""
    encoder = FeatureEncoder(contract)
    df = make_customers(200, seed=3).drop(columns="churn")
    df = df.astype({"contract": object})
    df.loc[7, "contract"] = "Weekly"  # unseen, ignored by the policy
    key = segment_key(contract)
    rows = np.arange(3, 200, 2)
    judged = encoder.judge(df)
    codes = segment_codes(key, judged, encoder.rules, rows)
    assert len(codes) == len(rows)
    for code, i in zip(codes.tolist(), rows.tolist(), strict=True):
        expected = {c: str(df.loc[i, c]) for c in DERIVED}
        if i == 7:
            expected["contract"] = MISSING_LEVEL
        assert key.decode(code) == expected
    assert (segment_codes(key, judged, encoder.rules)[rows] == codes).all()


def test_the_key_survives_its_json_and_old_runs_have_none(contract: DataContract) -> None:
    """A stored key reads back equal; a NULL key decodes nothing and filters nothing."""
    key = segment_key(contract, ["contract", "tenure"])
    assert SegmentKey.from_json(key.to_json()) == key
    empty = SegmentKey.from_json(None)
    assert empty.decode(5) == {}
    assert empty.levels() == {}
    with pytest.raises(DataError, match="not a segment of this run"):
        empty.condition(sa.column("segment"), {"contract": "One year"})


def test_sql_conditions_select_exactly_the_rows_of_a_level() -> None:
    """On a real SQLite table, column = level picks the same rows as decoding each code."""
    key = SegmentKey((Segment("a", ("x", "y")), Segment("b", ("p", "q", "r"), missing=True)))
    codes = [da * key.strides[0] + db * key.strides[1] for da in (1, 2) for db in (0, 1, 2, 3)]
    engine = sa.create_engine("sqlite://")
    table = sa.Table("t", sa.MetaData(), sa.Column("segment", sa.BigInteger))
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), [{"segment": c} for c in [*codes, None]])
        for wanted in ({"a": "y"}, {"b": "q"}, {"b": MISSING_LEVEL}, {"a": "x", "b": "r"}):
            query = sa.select(table.c.segment).where(*key.condition(table.c.segment, wanted))
            got = sorted(conn.execute(query).scalars())
            expected = [c for c in codes if wanted.items() <= key.decode(c).items()]
            assert got == sorted(expected), wanted
    with pytest.raises(DataError, match="no level 'z'; its levels: x, y\\."):
        key.condition(table.c.segment, {"a": "z"})
