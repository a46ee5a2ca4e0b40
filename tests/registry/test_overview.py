"""The Model page's read: champion and challenger cards, calibration, cache; who acted."""

from __future__ import annotations

import getpass
import shutil
from pathlib import Path

import numpy as np
import pytest

from churnops import registry
from churnops.config import Settings
from churnops.registry import overview
from churnops.registry.catalog import MANIFEST_KEY
from churnops.registry.overview import calibration_bins, model_overview
from churnops.scoring.estimators import ESTIMATORS
from churnops.stages import train_and_register
from tests.factories import make_customers


@pytest.fixture
def home(tmp_path: Path, trained_home: Path) -> Settings:
    """A private copy of the session's trained home (champion v1): the cache writes there."""
    target = tmp_path / "home"
    shutil.copytree(trained_home, target)
    return Settings(home=target, trials=2, cv_folds=3)


@pytest.mark.integration
def test_champion_card_and_no_challenger(home: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """One version holds both aliases: it is the champion, and nothing is waiting."""
    cards = model_overview(home)
    assert cards["challenger"] is None
    card = cards["champion"]
    assert card["version"] == "1"
    assert card["family"] in ESTIMATORS  # any family, the blend included
    assert 0.0 < card["threshold"] < 1.0
    assert card["holdout"]["roc_auc"] > 0.6
    assert card["cv"]["roc_auc"] > 0.6
    assert not any(k.startswith("best_") for k in card["cv"])
    assert card["importance"]
    assert all(v >= 0 for v in card["importance"].values())
    assert card["run_url"] is None  # SQLite tracking: no UI to link to
    assert card["run_id"]
    assert card["created_at"].startswith("20")
    assert card["aliases"] == ["challenger", "champion"]
    assert MANIFEST_KEY not in card["tags"]
    assert card["tags"]["family"] == card["family"]

    cal = card["calibration"]
    assert len(cal["prob_pred"]) == len(cal["prob_true"]) == len(cal["counts"]) > 1
    assert sum(cal["counts"]) == 160  # the whole holdout (20 % of 800)
    assert all(0.0 <= v <= 1.0 for v in cal["prob_pred"] + cal["prob_true"])
    assert cal["prob_pred"] == sorted(cal["prob_pred"])

    # cached per version: a second read neither scores the holdout nor opens the run
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("recomputed a cached version")

    monkeypatch.setattr(overview, "load_model", refuse)
    monkeypatch.setattr(overview, "configure", refuse)
    assert model_overview(home) == cards


@pytest.mark.integration
def test_challenger_card_and_the_actor_of_promotions(home: Settings) -> None:
    """A second version is the challenger; promote and rollback record who asked."""
    train_and_register(
        make_customers(800, seed=5), home, target="churn", id_column="customer_id",
        families=["logistic"],
    )  # fmt: skip
    cards = model_overview(home)
    assert cards["champion"]["version"] == "1"
    assert cards["challenger"]["version"] == "2"
    assert cards["challenger"]["family"] == "logistic"
    assert sum(cards["challenger"]["calibration"]["counts"]) == 160

    registry.promote(home, min_delta=-1.0, actor="dashboard:alice")
    registry.rollback(home, actor="dashboard:bob")
    events = registry.list_events(home)
    assert [(e["action"], e["actor"]) for e in events[:2]] == [
        ("rollback", "dashboard:bob"),
        ("promoted", "dashboard:alice"),
    ]
    assert events[-1]["actor"] == getpass.getuser()  # the first registration: the OS user


def test_calibration_bins_by_hand() -> None:
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.05, 0.15, 0.12, 0.95, 1.0])
    bins = calibration_bins(y, p)
    assert bins["counts"] == [1, 2, 2]
    assert bins["prob_pred"] == pytest.approx([0.05, 0.135, 0.975])
    assert bins["prob_true"] == pytest.approx([0.0, 0.5, 1.0])


def test_run_url_points_at_the_ui_without_credentials() -> None:
    url = overview._run_url("https://svc:secret@mlflow.example:5000/base/", "3", "abc")
    assert url == "https://mlflow.example:5000/base/#/experiments/3/runs/abc"
    assert overview._run_url("sqlite:////tmp/mlflow.db", "3", "abc") is None
