"""What a monitoring run watches is derived from the data and the champion, or says why not."""

from __future__ import annotations

import pandas as pd
import pytest

from churnops.config import Settings
from churnops.data.contract import infer_contract
from churnops.monitoring.plan import f1_floor, plan_monitoring

HOLDOUT = {"f1": 0.848, "roc_auc": 0.91}
IMPORTANCE = {"calls": 0.9, "plan": 0.5, "minutes": 0.3, "region": 0.1}


@pytest.fixture
def table() -> pd.DataFrame:
    n = 200
    return pd.DataFrame(
        {
            "account_id": range(1000, 1000 + n),
            "as_of": pd.date_range("2026-01-05", periods=n, freq="D").strftime("%Y-%m-%d"),
            "plan": ["basic", "plus", "pro", "basic"] * (n // 4),
            "intl": ["yes", "no"] * (n // 2),
            "region": [f"r{i % 30}" for i in range(n)],
            "calls": [i % 9 for i in range(n)],
            "minutes": [float(i) * 1.5 for i in range(n)],
            "left": ["yes" if i % 5 == 0 else "no" for i in range(n)],
        }
    )


def _plan(settings: Settings, table: pd.DataFrame, current: pd.DataFrame | None = None):
    contract = infer_contract(table, "left", "account_id")
    return plan_monitoring(
        settings,
        contract,
        holdout=HOLDOUT,
        importance=IMPORTANCE,
        current=table if current is None else current,
    )


def test_a_datetime_column_is_the_contracts_time_not_a_feature(table: pd.DataFrame) -> None:
    """ISO dates become the contract's time column; they are never a feature."""
    contract = infer_contract(table, "left", "account_id")
    assert contract.time_column == "as_of"
    assert "as_of" not in contract.feature_names
    assert contract.column("as_of").kind == "datetime"


def test_everything_is_derived_when_nothing_is_configured(table: pd.DataFrame) -> None:
    """Key features by |SHAP|, low-cardinality segments, the time column, a relative floor."""
    plan = _plan(Settings(), table)
    assert plan.key_features == ["calls", "plan", "minutes"]
    assert plan.key_features_from == "champion's top 3 by mean |SHAP|"
    assert plan.segment_columns == ["plan", "intl"]  # region has 30 levels: too many
    assert plan.date_column == "as_of"
    assert plan.f1_floor == pytest.approx(0.798)
    assert "holdout F1 0.848" in plan.f1_floor_from
    assert plan.warnings == []


def test_configured_names_the_data_lacks_are_warnings(table: pd.DataFrame) -> None:
    """Telco names on another table: each missing one is a warning, never silence."""
    settings = Settings(
        key_features=["tenure", "calls"],
        segment_columns=["contract", "plan"],
        date_column="snapshot_date",
    )
    plan = _plan(settings, table)
    assert plan.key_features == ["calls"]
    assert plan.segment_columns == ["plan"]
    assert plan.date_column is None
    text = " ".join(plan.warnings)
    assert "key_features: 'tenure'" in text
    assert "segment_columns: 'contract'" in text
    assert "date_column: 'snapshot_date'" in text


def test_an_absolute_floor_wins_over_the_relative_one() -> None:
    """``f1_floor`` set: that number; otherwise holdout F1 less ``f1_max_drop``."""
    assert f1_floor(Settings(f1_floor=0.6), HOLDOUT)[0] == 0.6
    assert f1_floor(Settings(f1_max_drop=0.1), HOLDOUT)[0] == pytest.approx(0.748)
    assert f1_floor(Settings(), {})[0] is None


def test_a_datetime_column_of_the_monitored_table_is_found(table: pd.DataFrame) -> None:
    """A model trained without dates still windows a batch that carries a datetime column."""
    trained = table.drop(columns=["as_of"])
    contract = infer_contract(trained, "left", "account_id")
    current = table.rename(columns={"as_of": "scored_on"})
    plan = plan_monitoring(
        Settings(), contract, holdout=HOLDOUT, importance=IMPORTANCE, current=current
    )
    assert plan.date_column == "scored_on"
    assert plan.date_from == "datetime column of the monitored table"
