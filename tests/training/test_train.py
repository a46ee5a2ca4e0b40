"""The training stage end to end on small data, with behavioural model tests."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from churnops.config import Settings
from churnops.errors import DataValidationError
from churnops.training.candidates import get_candidate
from churnops.training.run import TrainResult, train
from tests.factories import loyal_customer, make_customers, obvious_churner


def _probabilities(result: TrainResult, records: list[dict]) -> np.ndarray:
    model = result.model
    return model.probabilities(model.encoder.transform(pd.DataFrame(records)))


Progress = list[tuple[str, int, int]]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, Progress]:
    settings = Settings(home=tmp_path_factory.mktemp("h"), trials=3, cv_folds=3)
    calls: Progress = []
    result = train(
        make_customers(900, seed=7),
        settings,
        target="churn",
        id_column="customer_id",
        progress=lambda *call: calls.append(call),
    )
    return result, calls


@pytest.fixture(scope="module")
def result(trained: tuple[TrainResult, Progress]) -> TrainResult:
    return trained[0]


def test_result_has_metrics_threshold_and_artifacts(result: TrainResult) -> None:
    """CV and holdout carry every metric; plots, SHAP JSON and metrics.json are written."""
    assert set(result.cv) == set(result.holdout)
    assert 0.7 < result.holdout["roc_auc"] <= 1.0
    assert 0.0 < result.model.threshold < 1.0
    names = {p.name for p in result.artifacts_dir.iterdir()}
    assert {
        "roc_curve.png",
        "pr_curve.png",
        "calibration.png",
        "confusion_matrix.png",
        "profit_curve.png",
        "shap_importance.png",
        "shap_importance.json",
        "metrics.json",
    } <= names
    assert json.loads((result.artifacts_dir / "metrics.json").read_text()) == result.holdout
    assert len(result.holdout_frame) == 180


def test_every_trial_is_kept_and_the_chosen_ones_marked(result: TrainResult) -> None:
    """Each family's trials are records (CatBoost its share); the leaderboard lists them all."""
    families = Settings.model_fields["families"].default
    assert [(t.family, t.number) for t in result.trials] == [
        (f, n) for f in families for n in range(get_candidate(f).trials(3))
    ]
    assert get_candidate("catboost").trials(3) == 2
    assert all(t.seconds > 0 and t.started > 0 for t in result.trials)
    board = result.leaderboard
    assert list(board.columns) == [
        "family",
        "trial",
        "state",
        "cv_score",
        "seconds",
        "chosen",
        "params",
    ]
    assert len(board) == len(result.trials)
    scores = board["cv_score"].dropna().tolist()
    assert scores == sorted(scores, reverse=True)
    chosen = list(board[board["chosen"]].itertuples())
    assert {(c.family, c.trial) for c in chosen} == set(result.chosen_trials.items())
    for row in chosen:  # each chosen trial is its family's best
        assert row.cv_score == result.family_scores[row.family]
    if result.family != "ensemble":
        assert json.loads(chosen[0].params) == result.params


def test_no_step_runs_without_progress(trained: tuple[TrainResult, Progress]) -> None:
    """Every step reports a task and finishes it: contract, validation, tuning, the rest."""
    result, calls = trained
    tasks = list(dict.fromkeys(task for task, _, _ in calls))
    assert tasks == [
        "infer contract",
        "validate data",
        "tune logistic",
        "tune spline",
        "tune lightgbm",
        "tune catboost",
        "blend families",
        "calibrate + threshold",
        f"fit {result.family}",
        "explain + plot",
    ]
    for task in tasks:  # each starts at 0 (its clock shows at once) and ends complete
        done = [(d, t) for name, d, t in calls if name == task]
        assert done[0][0] == 0
        assert done[-1][0] == done[-1][1]


def test_important_features_are_the_true_drivers(result: TrainResult) -> None:
    """Global SHAP puts the generating features (contract, tenure) near the top."""
    assert {"contract", "tenure"} <= set(list(result.importance)[:4])


def test_obvious_churner_outranks_loyal_customer(result: TrainResult) -> None:
    """A new month-to-month fibre customer scores far above a two-year loyal one."""
    p = _probabilities(result, [obvious_churner(), loyal_customer()])
    assert p[0] > 0.5 > p[1]


def test_customer_id_does_not_change_the_score(result: TrainResult) -> None:
    """Changing only the customer id leaves the probability unchanged."""
    a = _probabilities(result, [obvious_churner()])
    b = _probabilities(result, [{**obvious_churner(), "customer_id": "someone-else"}])
    assert a[0] == b[0]


def test_reasons_explain_the_score(result: TrainResult) -> None:
    """Top reasons are the biggest contributions, signed towards churn for a churner."""
    X = result.model.encoder.transform(pd.DataFrame([obvious_churner()]))
    reasons = result.model.reasons(X, top=3)[0]
    assert len(reasons) == 3
    assert reasons[0]["contribution"] > 0
    magnitudes = [abs(r["contribution"]) for r in reasons]
    assert magnitudes == sorted(magnitudes, reverse=True)


def test_predict_frame_keeps_ids_and_flags_at_threshold(result: TrainResult) -> None:
    """predict_frame returns id, probability, the 0/1 flag at the threshold, and no errors."""
    df = make_customers(20, seed=8)
    out = result.model.predict_frame(df)
    assert list(out.columns) == ["customer_id", "probability", "churn", "error"]
    assert out["error"].isna().all()
    assert (out["churn"] == (out["probability"] >= result.model.threshold)).all()


def test_profit_strategy_and_selected_families(tmp_path) -> None:
    """--threshold profit and --families restrict and change the run."""
    settings = Settings(
        home=tmp_path, trials=2, cv_folds=3, threshold_strategy="profit", offer_cost=50.0
    )
    res = train(
        make_customers(500, seed=9),
        settings,
        target="churn",
        id_column="customer_id",
        families=["logistic"],
    )
    assert res.family == "logistic"
    assert res.threshold_strategy == "profit"


def test_bad_training_data_is_refused_before_training(tmp_path) -> None:
    """Duplicate ids stop training with a DataValidationError listing the problem."""
    df = make_customers(300)
    df.loc[5, "customer_id"] = df.loc[4, "customer_id"]
    with pytest.raises(DataValidationError, match="duplicate") as info:
        train(df, Settings(home=tmp_path, trials=1), target="churn", id_column="customer_id")
    assert info.value.details["issues"][0]["rows"] == [5, 6]  # counted from 1


def test_too_few_churners_is_a_clear_error(tmp_path) -> None:
    """A table with a handful of churners cannot be cross-validated: say so."""
    df = make_customers(200)
    df["churn"] = "No"
    df.loc[:2, "churn"] = "Yes"
    with pytest.raises(DataValidationError, match="rarer class"):
        train(df, Settings(home=tmp_path, trials=1), target="churn", id_column="customer_id")


def test_training_is_reproducible(tmp_path) -> None:
    """The same data and seed give the same model and threshold."""
    df = make_customers(400, seed=10)
    settings = Settings(home=tmp_path, trials=2, cv_folds=3, families=["logistic", "lightgbm"])
    a = train(df, settings, target="churn", id_column="customer_id")
    b = train(df, settings, target="churn", id_column="customer_id")
    assert a.params == b.params
    assert a.model.threshold == b.model.threshold
    np.testing.assert_allclose(
        a.model.predict_frame(df)["probability"], b.model.predict_frame(df)["probability"]
    )
    assert isinstance(a.train_frame, pd.DataFrame)
