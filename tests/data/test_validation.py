"""Validation catches each class of bad input and names the rows, columns and expectations."""

from __future__ import annotations

import pandas as pd
import pytest

from churnops.data.contract import DataContract, infer_contract
from churnops.data.validation import validate
from tests.factories import make_customers


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return make_customers(300, seed=3)


@pytest.fixture(scope="module")
def contract(clean: pd.DataFrame) -> DataContract:
    return infer_contract(clean, "churn", "customer_id")


def checks(df: pd.DataFrame, contract: DataContract, **kw) -> dict[str, object]:
    report = validate(df, contract, **kw).report
    return {i.check: i for i in report.issues}


def test_clean_data_passes(clean: pd.DataFrame, contract: DataContract) -> None:
    """The table the contract came from validates with no issue."""
    report = validate(clean, contract).report
    assert report.ok
    assert report.issues == []


def test_missing_required_columns(clean, contract) -> None:
    """A missing feature column is an error naming the column."""
    found = checks(clean.drop(columns=["tenure", "contract"]), contract)
    assert found["missing_columns"].severity == "error"
    assert "tenure" in found["missing_columns"].message
    assert "contract" in found["missing_columns"].message


def test_text_in_numeric_column_reports_rows(clean, contract) -> None:
    """Non-numeric text in a numeric column is an error listing the rows and the values."""
    df = clean.astype({"monthly_charges": object})
    df.loc[[4, 9], "monthly_charges"] = "n/a-ish"
    result = validate(df, contract)
    issue = {i.check: i for i in result.report.issues}["non_numeric"]
    assert issue.rows == [4, 9]
    assert issue.examples == ["n/a-ish"]
    assert set(result.bad_rows) == {4, 9}


def test_blank_numeric_cells_follow_the_missing_policy(clean, contract) -> None:
    """Blank cells (" ") are missing: a warning where the policy imputes, an error otherwise."""
    df = clean.astype({"total_charges": object})
    df.loc[[1, 2], "total_charges"] = " "
    assert checks(df, contract)["missing_value"].rows == [1, 2]  # never missing in training
    imputing = contract.model_copy(deep=True)
    imputing.column("total_charges").policy.missing = "impute"
    result = validate(df, imputing)
    assert result.report.ok
    assert {i.check for i in result.report.warnings} >= {"coerced_blanks", "unexpected_missing"}
    assert result.frame["total_charges"].isna().sum() == 2


def test_unseen_category_lists_allowed_values(clean, contract) -> None:
    """An unseen category is an error that lists the allowed categories."""
    df = clean.copy()
    df.loc[5, "contract"] = "Weekly"
    issue = checks(df, contract)["unseen_category"]
    assert issue.rows == [5]
    assert "Month-to-month" in issue.message
    assert "'Weekly'" in issue.message


def test_out_of_range_values(clean, contract) -> None:
    """A negative charge where training had none is out of range."""
    df = clean.copy()
    df.loc[6, "monthly_charges"] = -20.0
    issue = checks(df, contract)["out_of_range"]
    assert issue.rows == [6]


def test_unknown_boolean_value(clean, contract) -> None:
    """A boolean column holding a third value is an error."""
    df = clean.copy()
    df.loc[8, "partner"] = "Maybe"
    assert checks(df, contract)["unknown_boolean"].rows == [8]


def test_duplicate_and_missing_ids(clean, contract) -> None:
    """Duplicate ids report both rows; a missing id is its own error."""
    df = clean.copy()
    df.loc[10, "customer_id"] = df.loc[0, "customer_id"]
    df.loc[11, "customer_id"] = None
    found = checks(df, contract)
    assert found["duplicate_id"].rows == [0, 10]
    assert found["missing_id"].rows == [11]


def test_arrow_backed_ids_report_the_same_rows(clean, contract) -> None:
    """Ids held as Arrow strings (as batch scoring reads Parquet) are checked alike."""
    df = clean.copy()
    df.loc[10, "customer_id"] = df.loc[0, "customer_id"]
    df.loc[11, "customer_id"] = None
    df["customer_id"] = df["customer_id"].astype("string[pyarrow]")
    found = checks(df, contract)
    assert found["duplicate_id"].rows == [0, 10]
    assert found["missing_id"].rows == [11]
    df.loc[10, "customer_id"] = "someone else"
    assert "duplicate_id" not in checks(df, contract)


def test_target_problems(clean, contract) -> None:
    """Missing labels, unknown labels and a one-class target are errors."""
    df = clean.copy()
    df.loc[12, "churn"] = None
    df.loc[13, "churn"] = "Maybe"
    found = checks(df, contract)
    assert found["missing_target"].rows == [12]
    assert found["unknown_label"].rows == [13]
    one_class = checks(clean.assign(churn="No"), contract)["one_class_target"]
    assert "single class (No)" in one_class.message


def test_scoring_data_needs_no_target(clean, contract) -> None:
    """Without require_target a table without the label is fine."""
    assert validate(clean.drop(columns="churn"), contract, require_target=False).report.ok
    assert not validate(clean.drop(columns="churn"), contract).report.ok


def test_constant_column_warns(clean, contract) -> None:
    """A feature that became constant is flagged as a warning."""
    assert checks(clean.assign(senior_citizen=0), contract)["constant_column"].severity == "warning"


def _messy(clean: pd.DataFrame) -> pd.DataFrame:
    """Padded, blank-like, unseen and missing category cells, as CSV text would hold them."""
    df = clean.drop(columns="churn").astype({"contract": object, "partner": object})
    df.loc[1, "contract"] = " Month-to-month "
    df.loc[2, "contract"] = "NA"
    df.loc[3, "contract"] = None
    df.loc[4, "contract"] = "Weekly"
    df.loc[5, "partner"] = None
    df.loc[6, "internet_service"] = " "
    return df


def _as_category(df: pd.DataFrame) -> pd.DataFrame:
    """The same table as Parquet delivers it: text as ``category``, with an unused level."""
    out = df.copy()
    for name in ("contract", "partner", "internet_service", "payment_method"):
        out[name] = out[name].astype("category").cat.add_categories(["Never used"])
    return out


def test_category_columns_validate_like_text(clean, contract) -> None:
    """Parquet's category dtype gives the same report, bad rows and cleaned values as text."""
    text = _messy(clean)
    categorical = _as_category(text)
    before = categorical.copy()
    from_text = validate(text, contract, require_target=False)
    from_categories = validate(categorical, contract, require_target=False)
    assert from_categories.report == from_text.report
    assert {"unseen_category", "missing_value"} <= {i.check for i in from_text.report.issues}
    assert from_categories.bad_rows == from_text.bad_rows
    assert sorted(from_text.bad_rows) == [2, 3, 4, 5, 6]  # blank, missing and unseen cells
    for name in text.columns:
        got = from_categories.frame[name].astype(object)
        want = from_text.frame[name].astype(object)
        assert got.where(got.notna(), None).tolist() == want.where(want.notna(), None).tolist()
    pd.testing.assert_frame_equal(categorical, before)  # the caller's table is untouched


def test_constant_category_column_ignores_unused_levels(clean, contract) -> None:
    """A category column with one value in use is constant, whatever levels its dtype lists."""
    df = _as_category(clean.assign(contract="Two year"))
    assert "constant_column" in checks(df, contract)


def test_integer_flags_outside_the_levels_are_unknown(clean, contract) -> None:
    """Integer 0/1 flags are checked without hashing; a 2 is still an unknown boolean."""
    df = clean.copy()
    df["senior_citizen"] = df["senior_citizen"].astype("int64")
    df.loc[7, "senior_citizen"] = 2
    assert checks(df, contract)["unknown_boolean"].rows == [7]
    df["senior_citizen"] = df["senior_citizen"] == 1  # numpy bool reads as 0/1
    assert "unknown_boolean" not in checks(df, contract)
