"""The column rules: one verdict per value, the same for a table, a record and a batch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnops.data.contract import DataContract, infer_contract
from churnops.data.rules import (
    CONTROL_ID,
    MISSING,
    NOT_A_CATEGORY,
    NOT_A_NUMBER,
    NOT_FINITE,
    UNSEEN,
    ColumnRule,
    Verdict,
    ids_accepted,
    judge_id,
)
from churnops.errors import ScoringInputError
from churnops.features import FeatureEncoder
from churnops.scoring import RecordCodec
from tests.factories import make_customers


@pytest.fixture(scope="module")
def contract() -> DataContract:
    return infer_contract(make_customers(300), "churn", "customer_id")


def rule(contract: DataContract, name: str) -> ColumnRule:
    encoder = FeatureEncoder(contract)
    return encoder.rules[encoder.source_columns.index(name)]


def test_numbers_text_numbers_and_their_refusals(contract: DataContract) -> None:
    """Numbers and number text are read; other text, flags and infinities are refused."""
    tenure = rule(contract, "tenure")
    assert tenure.judge(12) == 12.0
    assert tenure.judge(" 12.5 ") == 12.5
    assert tenure.judge("1e1") == 10.0
    for text in ("12,5", "1_000", "١٢", "0x10", "lots"):
        assert tenure.judge(text) is NOT_A_NUMBER, text
    assert tenure.judge(True) is NOT_A_NUMBER
    assert tenure.judge(float("inf")) is NOT_FINITE
    assert tenure.judge(10**400) is NOT_FINITE
    assert tenure.judge(-5).check == "out_of_range"
    assert "allowed range" in tenure.judge(10**6).message


def test_missing_follows_the_policy(contract: DataContract) -> None:
    """A missing or blank value is refused, or imputed with the median when the policy says so."""
    tenure = rule(contract, "tenure")
    for value in (None, float("nan"), "", " ", "NA", "null"):
        assert tenure.judge(value) is MISSING
    imputing = contract.model_copy(deep=True)
    imputing.column("tenure").policy.missing = "impute"
    assert rule(imputing, "tenure").judge(None) == imputing.column("tenure").median


def test_clip_policy_clips_out_of_range_numbers(contract: DataContract) -> None:
    """out_of_range=clip brings a number back to the nearest bound instead of refusing it."""
    clipping = contract.model_copy(deep=True)
    spec = clipping.column("monthly_charges")
    spec.policy.out_of_range = "clip"
    assert rule(clipping, "monthly_charges").judge(10**6) == spec.upper


def test_booleans_as_text(contract: DataContract) -> None:
    """A Yes/No column reads yes/true/1 in any case; other values name the allowed levels."""
    partner = rule(contract, "partner")
    for value in ("Yes", " yes ", "TRUE", 1, True, 1.0, "1"):
        assert partner.judge(value) == 1.0, value
    for value in ("No", "false", 0, False):
        assert partner.judge(value) == 0.0, value
    assert partner.judge("Maybe").message == "expects one of: No, Yes"
    strict = contract.model_copy(deep=True)
    strict.column("partner").policy.text = "reject"
    assert isinstance(rule(strict, "partner").judge("yes"), Verdict)
    assert rule(strict, "partner").judge("Yes") == 1.0


def test_categories(contract: DataContract) -> None:
    """Levels match after stripping; unseen levels follow the policy; flags are not levels."""
    column = rule(contract, "contract")
    assert column.judge(" Two year\t") == column.index["Two year"]
    assert column.judge("Weekly") is UNSEEN
    assert column.judge(True) is NOT_A_CATEGORY
    assert column.judge(["Two year"]) is NOT_A_CATEGORY
    ignoring = contract.model_copy(deep=True)
    ignoring.column("contract").policy.unseen = "ignore"
    assert rule(ignoring, "contract").judge("Weekly") == -1


def test_ids() -> None:
    """Ids are non-blank text up to 200 characters without control characters, or integers."""
    assert judge_id("C-1") == "C-1"
    assert judge_id(42) == "42"
    assert judge_id("a\x00b") is CONTROL_ID
    for bad in ("", "   ", "x" * 201, True, 1.5):
        assert judge_id(bad).check == "bad_id", bad  # type: ignore[union-attr]
    assert judge_id(None).check == "missing_id"  # type: ignore[union-attr]


_ID_CHARS = st.sampled_from(
    ["a", "7", "-", " ", "\u00a0", "\u2028", "\u3000", "\x00", "\x1f", "\x85", "\t", "é"]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(_ID_CHARS, max_size=4),
            st.text(min_size=199, max_size=202, alphabet="x"),
            st.integers(),
            st.none(),
        ),
        max_size=6,
    )
)
def test_ids_judged_together_are_accepted_only_when_each_would_be(values: list[Any]) -> None:
    """ids_accepted (the batch path) never accepts an id judge_id refuses, nor changes one."""
    each = [judge_id(v) for v in values]
    if ids_accepted(values):
        assert each == values
    elif values and all(type(v) is str for v in values):
        assert any(not isinstance(j, str) for j in each)


def test_the_api_reports_the_same_message_as_a_batch_reason(contract: DataContract) -> None:
    """A record's 422 detail and a table row's rejection reason carry the same message."""
    record = {**make_customers(1, seed=3).drop(columns="churn").iloc[0].to_dict()}
    record["tenure"] = "lots"
    with pytest.raises(ScoringInputError) as caught:
        RecordCodec(contract).encode(record)
    detail = caught.value.details["errors"][0]
    judged = FeatureEncoder(contract).judge(pd.DataFrame([record]))
    problem = judged.problems[0][0]
    assert (detail["field"], detail["message"]) == (problem.field, problem.verdict.message)
    assert problem.reason == "tenure: expects a number, sent 'lots'"


CELLS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["Yes", " no ", "1", "12.5", "Two year", " Month-to-month", "NA", "", " "]),
    st.text(max_size=6),
)


@settings(max_examples=60, deadline=None)
@given(
    column=st.sampled_from(["tenure", "partner", "contract", "senior_citizen"]),
    cells=st.lists(CELLS, min_size=1, max_size=25),
)
def test_table_record_and_batch_paths_agree(column: str, cells: list[Any]) -> None:
    """Any cells in any column: the table path, one record and a batch agree on every row."""
    contract = infer_contract(make_customers(300), "churn", "customer_id")
    base = make_customers(len(cells), seed=5).drop(columns="churn")
    records = base.to_dict("records")
    for record, cell in zip(records, cells, strict=True):
        record[column] = cell
    table = pd.DataFrame(records).astype({column: object})
    codec = RecordCodec(contract)
    encoder = FeatureEncoder(contract)
    judged = encoder.judge(table)
    singles = []
    for i, record in enumerate(records):
        try:
            singles.append(codec.encode(record))
        except ScoringInputError as exc:
            fields = {(e["field"], e["message"]) for e in exc.details["errors"]}
            table_fields = {(p.field, p.verdict.message) for p in judged.problems[i]}
            assert fields == table_fields, (cells[i], fields, table_fields)
            singles.append(None)
        else:
            assert i not in judged.problems, (cells[i], judged.problems[i])
    good = [i for i, row in enumerate(singles) if row is not None]
    X = encoder.matrix(judged, rows=np.array(good, dtype=np.int64))
    assert X.tobytes() == np.array([singles[i] for i in good]).reshape(X.shape).tobytes()
    if good:
        batch = codec.encode_matrix([records[i] for i in good])
        assert batch.tobytes() == X.tobytes()


@pytest.mark.parametrize("cells", [[0, False], [False, 0], [1.0, True], [True, 1, "1"]])
def test_a_flag_beside_an_equal_number_is_judged_as_itself(cells: list[Any]) -> None:
    """``False == 0`` as a key: the table path must not give the flag the number's verdict."""
    contract = infer_contract(make_customers(300), "churn", "customer_id")
    records = make_customers(len(cells), seed=5).drop(columns="churn").to_dict("records")
    for record, cell in zip(records, cells, strict=True):
        record["tenure"] = cell
    judged = FeatureEncoder(contract).judge(pd.DataFrame(records).astype({"tenure": object}))
    codec = RecordCodec(contract)
    for i, record in enumerate(records):
        try:
            codec.encode(record)
            refused = False
        except ScoringInputError:
            refused = True
        assert refused == (i in judged.problems), (cells[i], judged.problems.get(i))
