"""Fixtures for monitoring: a registry whose champion was trained on synthetic customers."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from churnops.config import Settings
from churnops.data.synth import generate_chunks


def synth(rows: int, seed: int, drift: float = 0.0, start: date | None = None) -> pd.DataFrame:
    """Return synthetic customers (two weeks of snapshot dates when ``start`` is given)."""
    chunks = generate_chunks(rows, seed=seed, drift=drift, start_date=start, days=14)
    return pd.concat(chunks, ignore_index=True)


@pytest.fixture(scope="session")
def synth_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose champion v1 is a logistic model trained on 3,000 synthetic customers."""
    from churnops.stages import train_and_register

    home = tmp_path_factory.mktemp("synth") / "home"
    settings = Settings(home=home, trials=2, cv_folds=3, families=["logistic"])
    train_and_register(synth(3000, seed=1), settings, target="churn", id_column="customer_id")
    return home


@pytest.fixture
def synth_settings(synth_home: Path) -> Settings:
    return Settings(home=synth_home, trials=2, cv_folds=3, families=["logistic"])
