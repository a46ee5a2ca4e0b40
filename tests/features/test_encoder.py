"""The encoder: one matrix from tables and from records, derived from the contract."""

from __future__ import annotations

import numpy as np
import pytest

from churnops.data.contract import infer_contract
from churnops.errors import ScoringInputError
from churnops.features import FeatureEncoder
from tests.factories import loyal_customer, make_customers


@pytest.fixture(scope="module")
def encoder() -> FeatureEncoder:
    return FeatureEncoder(infer_contract(make_customers(300), "churn", "customer_id"))


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
