"""A store with everything the dashboard shows: two scoring dates, a champion and a
challenger, registry events, monitoring runs and keys — built once per session, on the
Telco-like demo columns and on a table with other names (nothing may assume the demo)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnops.config import Settings, get_settings
from tests.conftest import home_tracking_uri
from tests.factories import make_customers

DATES = (date(2026, 11, 1), date(2026, 11, 8))


@dataclass(frozen=True)
class Seeded:
    """A seeded home: its settings, the scored tables per date and the keys."""

    settings: Settings
    tables: dict[date, pd.DataFrame]
    keys: dict[str, str]
    id_column: str
    target: str

    def env(self) -> dict[str, str]:
        """The environment a dashboard process (or an in-process AppTest) reads settings from."""
        s = self.settings
        env = {
            "CHURNOPS_HOME": str(s.home),
            "CHURNOPS_DATABASE_URL": s.resolved_database_url,
            "MLFLOW_TRACKING_URI": s.resolved_tracking_uri,
        }
        if s.customer_value_column:
            env["CHURNOPS_CUSTOMER_VALUE_COLUMN"] = s.customer_value_column
        return env


def call_detail(n: int, seed: int) -> pd.DataFrame:
    """A churn table unlike the demo: integer account ids, other columns, a boolean label."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["yes", "no"], n, p=[0.1, 0.9])
    calls = rng.poisson(1.5, n)
    minutes = np.round(rng.normal(180, 50, n).clip(0, 400), 1)
    margin = 1.8 * (plan == "yes") + 0.6 * (calls - 1.5) + 0.01 * (minutes - 180) - 2.0
    return pd.DataFrame(
        {
            "account_id": np.arange(100_000 + seed * 10_000, 100_000 + seed * 10_000 + n),
            "area_code": rng.choice(["408", "415", "510"], n),
            "international_plan": plan,
            "customer_service_calls": calls,
            "total_day_minutes": minutes,
            "total_day_charge": np.round(minutes * 0.17, 2),
            "churned": rng.random(n) < 1 / (1 + np.exp(-margin)),
        }
    )


def seed_home(
    home: Path,
    frame: pd.DataFrame,
    later: pd.DataFrame,
    *,
    target: str,
    id_column: str,
    value_column: str | None,
    database_url: str | None = None,
) -> Seeded:
    """Train v1 (champion) and v2 (challenger), score two dates, monitor both, make keys."""
    from churnops.batch import score
    from churnops.monitoring.run import monitor
    from churnops.registry import promote
    from churnops.serving.auth import create_key
    from churnops.stages import train_and_register

    settings = Settings(
        home=home,
        trials=2,
        cv_folds=3,
        families=["logistic"],
        tracking_uri=home_tracking_uri(home),
        database_url=database_url,
        customer_value_column=value_column,
        reasons_top=50,
    )
    for seed in (0, 1):
        train_and_register(
            frame.sample(frac=0.9, random_state=seed), settings, target=target, id_column=id_column
        )
    promote(settings)  # recorded as 'kept' or 'promoted': the Model page's history
    tables = {DATES[0]: frame, DATES[1]: later}
    for day, table in tables.items():
        path = home / f"customers-{day.isoformat()}.csv"
        table.to_csv(path, index=False)
        score(settings, path, scoring_date=day)
        monitor(table.drop(columns=[target]), settings, labels=table, current_name=path.name)
    keys = {
        role: create_key(settings, f"dash-{role}", role)["key"]
        for role in ("analyst", "admin", "scorer")
    }
    return Seeded(settings, tables, keys, id_column, target)


@pytest.fixture(scope="session")
def telco_store(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """Demo-like columns with a value column (monthly_charges)."""
    home = tmp_path_factory.mktemp("dash-telco") / "home"
    later = make_customers(400, seed=7)
    later["customer_id"] = make_customers(400, seed=6)["customer_id"]  # the same customers
    return seed_home(
        home,
        make_customers(400, seed=6),
        later,
        target="churn",
        id_column="customer_id",
        value_column="monthly_charges",
    )


@pytest.fixture(scope="session")
def other_store(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """A call-detail table: other names, integer ids, no value column."""
    home = tmp_path_factory.mktemp("dash-other") / "home"
    first = call_detail(400, seed=3)
    later = call_detail(400, seed=4)
    later["account_id"] = first["account_id"]
    return seed_home(
        home, first, later, target="churned", id_column="account_id", value_column=None
    )


@pytest.fixture(autouse=True)
def _keep_main_module() -> Iterator[None]:
    """Put ``__main__`` back after AppTest: it leaves the app script there, and a later
    test's "spawn" worker processes would then re-run the app instead of their target."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture
def use_store(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """Point this process's settings at a seeded store (AppTest runs the app in-process)."""

    def use(seeded: Seeded) -> Seeded:
        for key, value in seeded.env().items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        return seeded

    yield use
    get_settings.cache_clear()
