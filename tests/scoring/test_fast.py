"""The fast path is exact: records -> codec -> FastScorer equals the model's own scoring.

One row (``FastScorer.one``) and a batch (``FastScorer.many``, which is
``ScoringModel.probabilities``) must agree to 1e-12 for every family and calibrator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from churnops.config import Settings
from churnops.scoring import FastScorer, RecordCodec
from churnops.training.calibration import fit_calibrator
from tests.factories import make_customers


def _records(df: pd.DataFrame, drop: str = "churn") -> list[dict[str, Any]]:
    rows = df.drop(columns=[drop]).to_dict("records")
    return [
        {k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in rows
    ]


@pytest.fixture(
    scope="module", params=["logistic", "spline", "lightgbm", "xgboost", "catboost", "ensemble"]
)
def family_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from churnops.training.run import train

    if request.param == "ensemble":  # logistic + LightGBM + CatBoost, fixed weights
        from tests.fixtures.make_artifacts import build

        model = build("ensemble")
        model.calibrator = None  # the tests below set their own
        return model
    settings = Settings(home=tmp_path_factory.mktemp("fast") / "home", trials=1, cv_folds=2)
    result = train(
        make_customers(500, seed=4),
        settings,
        target="churn",
        id_column="customer_id",
        families=[request.param],
        trials=1,
    )
    return result.model


def test_codec_rows_equal_the_encoder(family_model: Any) -> None:
    """RecordCodec produces exactly the FeatureEncoder's matrix."""
    df = make_customers(300, seed=5)
    codec = RecordCodec(family_model.contract)
    rows = np.array([codec.encode(r) for r in _records(df)])
    assert np.array_equal(rows, family_model.encoder.transform(df))


@pytest.mark.parametrize("calibration", [None, "sigmoid", "isotonic"])
def test_fast_scorer_equals_model_probabilities(family_model: Any, calibration: Any) -> None:
    """For every family and calibrator, one row and a batch give the same numbers (1e-12)."""
    df = make_customers(300, seed=6)
    X = family_model.encoder.transform(df)
    if calibration:
        raw = family_model.estimator.probabilities(X)
        y = (df["churn"] == "Yes").to_numpy(dtype=int)
        family_model.calibrator = fit_calibrator(calibration, raw, y)
    try:
        expected = family_model.probabilities(X)
        scorer = FastScorer(family_model)
        one = np.array([scorer.one(row) for row in X.tolist()])
        assert np.abs(one - expected).max() <= 1e-12
        assert np.abs(scorer.many(X) - expected).max() <= 1e-12
    finally:
        family_model.calibrator = None


@pytest.mark.integration
def test_fast_path_agrees_with_registered_pyfunc_on_every_demo_customer(
    tmp_path: Path,
) -> None:
    """On all 7,043 Telco customers the API path equals mlflow.pyfunc to 1e-6, per family."""
    import mlflow

    from churnops.data.demo import load_demo
    from churnops.scoring import Predictor
    from churnops.stages import train_and_register

    df = load_demo()
    settings = Settings(home=tmp_path / "home", trials=1, cv_folds=2)
    records = _records(df)
    for family in ("lightgbm", "xgboost", "logistic", "catboost"):
        out = train_and_register(
            df, settings, target="churn", id_column="customer_id", families=[family], trials=1
        )
        version = out["model_version"]
        predictor = Predictor.from_registry(settings, alias=None, version=version)
        pyfunc = mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{version}")
        expected = pyfunc.predict(df.drop(columns=["churn"]))["probability"].to_numpy()
        one = np.array([predictor.score_one(r)[0] for r in records])
        many, _ = predictor.score_many(records)
        assert np.abs(one - expected).max() < 1e-6, family
        assert np.abs(many - expected).max() < 1e-6, family


def test_compiled_trees_are_used_for_lightgbm_and_equal_its_raw_scores(family_model: Any) -> None:
    """The numba tree walk is LightGBM's own arithmetic: raw scores agree to 1e-12."""
    from churnops.scoring.trees import CompiledTrees, compile_lightgbm

    if family_model.family != "lightgbm":
        pytest.skip("LightGBM only")
    import lightgbm

    booster = lightgbm.Booster(model_str=family_model.estimator.model_text)
    X = family_model.encoder.transform(make_customers(400, seed=8))
    compiled = compile_lightgbm(booster, X.shape[1], None)
    assert compiled is not None
    expected = booster.predict(X, raw_score=True)
    assert np.abs(compiled.raw_many(X) - expected).max() < 1e-12
    assert np.abs(np.array([compiled.raw_one(r) for r in X]) - expected).max() < 1e-12
    assert isinstance(family_model.estimator.trees, CompiledTrees)
    assert np.abs(family_model.estimator.margins(X) - expected).max() < 1e-12


def test_compiled_trees_follow_lightgbm_missing_value_rules() -> None:
    """NaN and zero-as-missing splits (default left/right) walk exactly as in LightGBM."""
    import lightgbm as lgb

    from churnops.scoring.trees import compile_lightgbm

    rng = np.random.default_rng(3)
    X = rng.normal(size=(600, 5))
    X[rng.random(X.shape) < 0.2] = np.nan
    X[:, 3] = np.where(rng.random(600) < 0.4, 0.0, X[:, 3])
    y = ((np.nan_to_num(X[:, 0]) + np.isnan(X[:, 1]) + (X[:, 3] == 0)) > 0.5).astype(int)
    probes = np.vstack([X, np.zeros((1, 5)), np.full((1, 5), np.nan), np.full((1, 5), 1e-40)])
    for zero_as_missing in (False, True):
        model = lgb.LGBMClassifier(
            n_estimators=40, num_leaves=7, zero_as_missing=zero_as_missing, verbose=-1
        ).fit(X, y)
        booster = model.booster_
        compiled = compile_lightgbm(booster, 5, None)
        assert compiled is not None
        assert not compiled.plain  # these trees have NaN / zero missing types
        expected = booster.predict(probes, raw_score=True)
        assert np.abs(compiled.raw_many(probes) - expected).max() < 1e-12
        assert np.abs(np.array([compiled.raw_one(r) for r in probes]) - expected).max() < 1e-12


def test_batch_matrix_equals_per_record_rows(family_model: Any) -> None:
    """Column-wise batch encoding gives exactly the per-record rows, mixed encodings too."""
    codec = RecordCodec(family_model.contract)
    records = _records(make_customers(500, seed=9))
    for i, r in enumerate(records):  # the same values in the other accepted spellings
        if i % 3 == 0:
            r["senior_citizen"] = bool(r["senior_citizen"])
        if i % 5 == 0:
            r["tenure"] = float(r["tenure"])
            r["contract"] = f" {r['contract']} "
        if i % 7 == 0:
            r["customer_id"] = i
        if i % 11 == 0:
            r["churn"] = "No"  # the label may be sent; it is ignored
    expected = np.array([codec.encode(r, i) for i, r in enumerate(records)])
    assert np.array_equal(codec.encode_matrix(records), expected)


@pytest.mark.parametrize(
    ("position", "change"),
    [
        (0, {"tenure": "12"}),
        (3, {"tenure": True}),
        (7, {"tenure": 10**400}),
        (7, {"tenure": 2**60}),
        (9, {"monthly_charges": float("nan")}),
        (9, {"monthly_charges": -5.0}),
        (11, {"contract": "Weekly"}),
        (12, {"contract": ["Month-to-month"]}),
        (13, {"senior_citizen": "maybe"}),
        (14, {"senior_citizen": {"a": 1}}),
        (15, {"contract": None}),
        (16, {"colour": "blue"}),
        (17, {"customer_id": ""}),
        (18, {"customer_id": None}),
        (19, {"customer_id": True}),
    ],
)
def test_batch_matrix_422s_equal_per_record(
    family_model: Any, position: int, change: dict[str, Any]
) -> None:
    """A batch gets the same verdicts (field, message, sent, allowed, index) as record by record.

    Whether a change is refused is the contract's column policy (the lead's rules); either
    way the batch path must say what the records say one at a time.
    """
    from churnops.errors import ScoringInputError

    codec = RecordCodec(family_model.contract)
    records = _records(make_customers(40, seed=10))
    records[position].update(change)
    records[position + 20].update(change)  # two changed customers: both reported, by index
    records[5] = "not an object"  # type: ignore[call-overload]

    def per_record() -> list[dict[str, Any]]:
        problems = []
        for i, record in enumerate(records):
            try:
                codec.encode(record, i)
            except ScoringInputError as exc:
                problems.extend(exc.details["errors"])
        return problems

    with pytest.raises(ScoringInputError) as columns:
        codec.encode_matrix(records)
    assert columns.value.details["errors"] == per_record()
    records[5] = dict(records[4])  # only the changed customers remain
    expected = per_record()
    if not expected:  # the policy accepts the change: same rows both ways
        rows = np.array([codec.encode(r, i) for i, r in enumerate(records)])
        assert np.array_equal(codec.encode_matrix(records), rows)
        return
    with pytest.raises(ScoringInputError) as columns:
        codec.encode_matrix(records)
    assert columns.value.details["errors"] == expected
    indexes = {p["index"] for p in columns.value.details["errors"]}
    assert indexes == {position, position + 20}


@pytest.mark.parametrize("calibration", [None, "sigmoid", "isotonic"])
def test_fast_batches_equal_model_probabilities_exactly(
    family_model: Any, calibration: Any
) -> None:
    """Batches on the threaded path equal one row at a time, and the estimator's own numbers.

    4,099 rows: over two threads' worth (the threaded path) with an odd tail. Calibrated
    or not, the model's probabilities are the estimator's (LightGBM: its own predict, to
    1e-12) through the calibrator.
    """
    X = family_model.encoder.transform(make_customers(4099, seed=11))
    if calibration:
        raw = family_model.estimator.probabilities(X)
        y = (make_customers(4099, seed=11)["churn"] == "Yes").to_numpy(dtype=int)
        family_model.calibrator = fit_calibrator(calibration, raw, y)
    try:
        scorer = FastScorer(family_model)
        got = scorer.many(X)
        assert np.array_equal(got, family_model.probabilities(X))
        assert np.abs(got[::97] - [scorer.one(r) for r in X[::97]]).max() <= 1e-12
        raw = family_model.estimator.probabilities(X)
        expected = family_model.calibrator(raw) if calibration else raw
        assert np.abs(got - expected).max() <= 1e-12
    finally:
        family_model.calibrator = None


def test_row_blocks_and_threads_do_not_change_a_bit() -> None:
    """Batches of any size score each row exactly as one() does, plain and NaN-aware trees."""
    import lightgbm as lgb

    from churnops.scoring.trees import PARALLEL_ROWS, compile_lightgbm

    rng = np.random.default_rng(5)
    X = rng.normal(size=(2 * PARALLEL_ROWS + 13, 6))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    X_missing = X.copy()
    X_missing[rng.random(X.shape) < 0.1] = np.nan
    for data, kwargs in ((X, {}), (X_missing, {"zero_as_missing": True})):
        booster = lgb.LGBMClassifier(n_estimators=30, num_leaves=15, verbose=-1, **kwargs)
        booster = booster.fit(data, y).booster_
        compiled = compile_lightgbm(booster, 6, None)
        assert compiled is not None
        assert compiled.plain == (data is X)
        one = np.array([compiled.raw_one(row) for row in data])
        for rows in (1, 7, 8, 129, len(data)):
            assert np.array_equal(compiled.raw_many(data[:rows]), one[:rows])
        expected = booster.predict(data, raw_score=True)
        assert np.abs(one - expected).max() < 1e-12


def test_many_works_from_worker_threads_at_once(family_model: Any) -> None:
    """Batch jobs score from worker threads, several at once, with the threaded batch path."""
    import threading

    X = family_model.encoder.transform(make_customers(5000, seed=12))
    scorer = FastScorer(family_model)
    expected = scorer.many(X)
    results: dict[int, np.ndarray] = {}
    threads = [
        threading.Thread(target=lambda k=k: results.__setitem__(k, scorer.many(X)))
        for k in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 3
    assert all(np.array_equal(r, expected) for r in results.values())


def test_many_works_in_a_forked_child(family_model: Any) -> None:
    """A process forked after scoring (a worker pool) scores too: no thread pool to inherit."""
    import multiprocessing

    if family_model.family == "xgboost":
        pytest.skip("XGBoost's own OpenMP pool does not survive fork (not the scorer's)")
    X = family_model.encoder.transform(make_customers(5000, seed=12))
    scorer = FastScorer(family_model)
    expected = scorer.many(X)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=lambda: queue.put(scorer.many(X)))
    child.start()
    assert np.array_equal(queue.get(timeout=60), expected)
    child.join(timeout=60)
    assert child.exitcode == 0
