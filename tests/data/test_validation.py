"""Validation catches each class of bad input and names the rows, columns and expectations."""

from __future__ import annotations

import pandas as pd
import pytest

from churnops.data.contract import DataContract, infer_contract
from churnops.data.validation import csv_first_line, rows_text, validate
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
    assert issue.rows == [5, 10]  # 1-based; bad_rows keeps 0-based positions
    assert issue.examples == ["n/a-ish"]
    assert set(result.bad_rows) == {4, 9}


def test_blank_numeric_cells_follow_the_missing_policy(clean, contract) -> None:
    """Blank cells (" ") are missing: a warning where the policy imputes, an error otherwise."""
    df = clean.astype({"total_charges": object})
    df.loc[[1, 2], "total_charges"] = " "
    assert checks(df, contract)["missing_value"].rows == [2, 3]  # never missing in training
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
    assert issue.rows == [6]
    assert "Month-to-month" in issue.message
    assert "'Weekly'" in issue.message


def test_out_of_range_values(clean, contract) -> None:
    """A negative charge where training had none is out of range."""
    df = clean.copy()
    df.loc[6, "monthly_charges"] = -20.0
    issue = checks(df, contract)["out_of_range"]
    assert issue.rows == [7]


def test_unknown_boolean_value(clean, contract) -> None:
    """A boolean column holding a third value is an error."""
    df = clean.copy()
    df.loc[8, "partner"] = "Maybe"
    assert checks(df, contract)["unknown_boolean"].rows == [9]


def test_duplicate_and_missing_ids(clean, contract) -> None:
    """Duplicate ids report both rows; a missing id is its own error."""
    df = clean.copy()
    df.loc[10, "customer_id"] = df.loc[0, "customer_id"]
    df.loc[11, "customer_id"] = None
    found = checks(df, contract)
    assert found["duplicate_id"].rows == [1, 11]
    assert found["missing_id"].rows == [12]


def test_arrow_backed_ids_report_the_same_rows(clean, contract) -> None:
    """Ids held as Arrow strings (as batch scoring reads Parquet) are checked alike."""
    df = clean.copy()
    df.loc[10, "customer_id"] = df.loc[0, "customer_id"]
    df.loc[11, "customer_id"] = None
    df["customer_id"] = df["customer_id"].astype("string[pyarrow]")
    found = checks(df, contract)
    assert found["duplicate_id"].rows == [1, 11]
    assert found["missing_id"].rows == [12]
    df.loc[10, "customer_id"] = "someone else"
    assert "duplicate_id" not in checks(df, contract)


def test_target_problems(clean, contract) -> None:
    """Missing labels, unknown labels and a one-class target are errors."""
    df = clean.copy()
    df.loc[12, "churn"] = None
    df.loc[13, "churn"] = "Maybe"
    found = checks(df, contract)
    assert found["missing_target"].rows == [13]
    assert found["unknown_label"].rows == [14]
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
    assert checks(df, contract)["unknown_boolean"].rows == [8]
    df["senior_citizen"] = df["senior_citizen"] == 1  # numpy bool reads as 0/1
    assert "unknown_boolean" not in checks(df, contract)


def test_every_row_message_quotes_the_values_and_counts_rows_from_one(clean, contract) -> None:
    """Each check's message shows what was sent and the 1-based rows (row 1: first data row)."""
    df = clean.astype({"monthly_charges": object, "tenure": object, "churn": object})
    df.loc[0, "monthly_charges"] = "abc"
    df.loc[1, "contract"] = "Weekly"
    df.loc[2, "tenure"] = 99999
    df.loc[3, "partner"] = "Maybe"
    df.loc[5, "customer_id"] = df.loc[4, "customer_id"]
    df.loc[6, "churn"] = "Perhaps"
    df.loc[7, "customer_id"] = "   "
    found = checks(df, contract)
    expected = {
        "non_numeric": "'monthly_charges': 1 row(s): expects a number (sent 'abc'; allowed: ",
        "unseen_category": "'contract': 1 row(s): unknown category (sent 'Weekly'; allowed: "
        "Month-to-month, One year, Two year); row 2",
        "out_of_range": "'tenure': 1 row(s): number outside the allowed range [0, 144] "
        "(sent 99999); row 3",
        "unknown_boolean": "'partner': 1 row(s): expects one of: No, Yes (sent 'Maybe'); row 4",
        "duplicate_id": f"'customer_id': 2 row(s): share an id with another row "
        f"(sent {df.loc[4, 'customer_id']!r}); rows 5, 6",
        "unknown_label": "'churn': 1 row(s): are not one of: Yes, No (sent 'Perhaps'); row 7",
        "bad_id": "(sent '   '; allowed: text); row 8",
    }
    for check, text in expected.items():
        assert text in found[check].message, found[check].message
    assert found["non_numeric"].message.endswith("; row 1")


def test_a_csv_source_gives_each_row_its_file_line(clean, contract, tmp_path) -> None:
    """Read from a CSV with a header, row N is on line N + 1: messages and JSON say both."""
    df = clean.copy()
    df.loc[[4, 11], "monthly_charges"] = 9999.0
    df.loc[2, "contract"] = "Weekly"
    path = tmp_path / "customers.csv"
    df.to_csv(path, index=False)
    read = pd.read_csv(path)
    first_line = csv_first_line(path, len(read))
    assert first_line == 2
    found = checks(read, contract, first_line=first_line)
    charges = found["out_of_range"]
    assert charges.message == (
        "'monthly_charges': 2 row(s): number outside the allowed range [0, 222] "
        "(sent 9999.0); rows 5 (line 6), 12 (line 13)"
    )
    assert (charges.rows, charges.lines) == ([5, 12], [6, 13])
    line = path.read_text().splitlines()[charges.lines[0] - 1]
    assert "9999.0" in line
    assert found["unseen_category"].message.endswith("; row 3 (line 4)")
    assert checks(read, contract)["unseen_category"].lines == []  # no file: no lines


def test_no_line_is_given_when_rows_and_lines_differ(tmp_path) -> None:
    """A quoted line break or a blank line shifts the lines: no line rather than a wrong one."""
    simple = tmp_path / "simple.csv"
    simple.write_text("a,b\n1,x\n2,y")  # no final newline
    assert csv_first_line(simple, len(pd.read_csv(simple))) == 2
    quoted = tmp_path / "quoted.csv"
    quoted.write_text('a,b\n1,"two\nlines"\n2,y\n')
    assert csv_first_line(quoted, len(pd.read_csv(quoted))) is None
    blank = tmp_path / "blank.csv"
    blank.write_text("a,b\n1,x\n\n2,y\n")
    assert csv_first_line(blank, len(pd.read_csv(blank))) is None


def test_rows_text_counts_from_one_and_says_how_many_more() -> None:
    """Positions are 0-based inside; people read row numbers from 1, and lines if known."""
    assert rows_text([2]) == "row 3"
    assert rows_text([4, 11], first_line=2) == "rows 5 (line 6), 12 (line 13)"
    assert rows_text(list(range(12))) == "rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 (and 2 more)"


def test_warnings_name_their_rows_and_values(clean, contract) -> None:
    """Blank cells, values beyond training's range and a constant column quote what they saw."""
    df = clean.astype({"total_charges": object})
    df.loc[3, "total_charges"] = "NA"
    df.loc[8, "tenure"] = 140  # allowed (policy range) but never seen in training
    imputing = contract.model_copy(deep=True)
    imputing.column("total_charges").policy.missing = "impute"
    found = checks(df, imputing)
    assert found["coerced_blanks"].message == (
        "'total_charges': 1 row(s): blank text read as missing (sent 'NA'); row 4"
    )
    assert found["unexpected_missing"].rows == [4]
    assert "(sent 140); row 9" in found["beyond_seen_range"].message
    constant = checks(clean.assign(senior_citizen=0), contract)["constant_column"]
    assert "single value (0)" in constant.message
