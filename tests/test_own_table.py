"""A churn table churnops has never seen, end to end: nothing Telco-shaped is assumed.

Different column names (no ``tenure``, no ``contract``), an integer id, a datetime column
and a boolean label: contract -> train -> score -> monitor a drifted copy -> the pipeline
twice. What the loop watches is derived from this table and its champion; a Telco name
configured by mistake is a warning; the pipeline does not retrain on the table the
champion was trained on just because another table drifted.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churnops.cli import app
from churnops.config import get_settings
from churnops.registry.overview import run_importance

pytestmark = pytest.mark.integration

runner = CliRunner()


def subscriptions(rows: int, seed: int, drift: float = 0.0) -> pd.DataFrame:
    """A streaming-service table: who cancels depends on support calls, plan and usage."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(
        ["basic", "family", "premium"], rows, p=[0.5 - drift / 3, 0.3, 0.2 + drift / 3]
    )
    region = rng.choice(["north", "south", "east", "west"], rows)
    autopay = rng.choice([True, False], rows, p=[0.6, 0.4])
    support_calls = rng.poisson(1.0 + 2.0 * drift, rows)
    hours = np.round(rng.gamma(4.0, 6.0 * (1 - 0.4 * drift), rows), 1)
    fee = np.round(np.select([plan == "basic", plan == "family"], [8.99, 14.99], 19.99), 2)
    margin = -1.2 + 0.7 * support_calls - 0.05 * hours + 0.9 * (~autopay) + 0.4 * (plan == "basic")
    cancelled = rng.random(rows) < 1 / (1 + np.exp(-margin))
    days = rng.integers(0, 28, rows)
    as_of = (pd.Timestamp("2026-10-05") + pd.to_timedelta(days, unit="D")).strftime("%Y-%m-%d")
    return pd.DataFrame(
        {
            "account_id": np.arange(500_001, 500_001 + rows) + seed * 10_000,
            "as_of": as_of,
            "plan": plan,
            "region": region,
            "autopay": autopay,
            "support_calls": support_calls,
            "watch_hours": hours,
            "monthly_fee": fee,
            "cancelled": cancelled,
        }
    )


def cli(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_own_table_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    subscriptions(3000, seed=1).to_csv("accounts.csv", index=False)
    drifted = subscriptions(2000, seed=2, drift=1.0).drop(columns=["cancelled"])
    drifted.to_csv("accounts-next-month.csv", index=False)

    contract = cli(
        "data", "contract", "accounts.csv", "--target", "cancelled", "--id", "account_id"
    )
    roles = {c["name"]: (c["role"], c["kind"]) for c in contract["columns"]}
    assert roles["as_of"] == ("time", "datetime")
    assert roles["account_id"][0] == "id"

    trained = cli(
        "train", "accounts.csv", "--target", "cancelled", "--id", "account_id",
        "--trials", "2", "--families", "logistic,lightgbm",
    )  # fmt: skip
    assert trained["model_version"] == "1"
    holdout_f1 = trained["holdout"]["f1"]

    scored = cli("score", "accounts.csv", "--date", "2026-11-01")
    assert scored["rows_scored"] == 3000

    watched = cli("monitor", "accounts-next-month.csv")
    derived = watched["derived"]
    settings = get_settings()
    importance = run_importance(settings, trained["run_id"])
    assert derived["key_features"] == sorted(importance, key=lambda n: -importance[n])[:3]
    assert derived["key_features_from"] == "champion's top 3 by mean |SHAP|"
    assert derived["segment_columns"] == ["plan", "region", "autopay"]
    assert derived["date_column"] == "as_of"
    assert derived["f1_floor"] == pytest.approx(holdout_f1 - 0.05, abs=1e-4)
    assert watched["warnings"] == []
    assert {s["column"] for s in watched["segments"]} == {"plan", "region", "autopay"}
    assert all(w["window_start"] >= "2026-10-05" for w in watched["windows"])
    assert watched["retrain"], watched["reasons"]  # a month of clear drift
    assert watched["estimated_band"]["f1"][0] <= watched["estimated"]["f1"]
    assert "covariate shift" in watched["estimate_assumption"]

    # Telco names configured by mistake: each one a warning, in the JSON, never silence.
    monkeypatch.setenv("CHURNOPS_SEGMENT_COLUMNS", '["contract", "plan"]')
    monkeypatch.setenv("CHURNOPS_KEY_FEATURES", '["tenure", "support_calls"]')
    monkeypatch.setenv("CHURNOPS_DATE_COLUMN", "snapshot_date")
    get_settings.cache_clear()
    misconfigured = cli("monitor", "accounts-next-month.csv")
    text = " ".join(misconfigured["warnings"])
    for name in ("'contract'", "'tenure'", "'snapshot_date'"):
        assert name in text
    assert misconfigured["derived"]["key_features"] == ["support_calls"]
    assert misconfigured["derived"]["segment_columns"] == ["plan"]
    for name in ("CHURNOPS_SEGMENT_COLUMNS", "CHURNOPS_KEY_FEATURES", "CHURNOPS_DATE_COLUMN"):
        monkeypatch.delenv(name)
    get_settings.cache_clear()

    # The drifted month asked for a retrain; the table the champion was trained on did not.
    first = cli("pipeline", "run", "--source", "accounts.csv")
    steps = {s["step"]: s for s in first["steps"]}
    assert not first["retrained"], steps["trigger"]
    assert "unchanged: v1 was trained on this data" in steps["trigger"]["detail"]["note"]
    assert steps["train"]["status"] == "skipped"
    assert steps["monitor"]["status"] == "ok"
    second = cli("pipeline", "run", "--source", "accounts.csv")
    steps = {s["step"]: s for s in second["steps"]}
    assert not second["retrained"]
    assert [steps[s]["status"] for s in ("train", "score", "monitor")] == ["skipped"] * 3
    assert "already done" in steps["monitor"]["summary"]
