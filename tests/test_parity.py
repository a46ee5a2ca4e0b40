"""One record, one verdict, one probability: the API, batch scoring and the pyfunc agree.

Hypothesis generates customers from the champion's contract — valid ones and every class of
bad value (missing, blank, text numbers, booleans as text, unseen and padded categories,
bounds and beyond, infinities, unicode, wrong types, bad ids) — and sends each batch to
``POST /v1/predict`` (one by one), ``POST /v1/predict/batch``, the batch scoring stage
(``churnops score``'s code, pandas and Spark engines) and ``mlflow.pyfunc``. Every path must
accept and refuse the same records, name the same fields, and give accepted records the
same probability to 1e-9.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from churnops.config import Settings
from churnops.data.contract import BLANK_STRINGS, ColumnSpec, DataContract
from churnops.scoring import Predictor
from churnops.serving import create_app
from churnops.serving.auth import create_key
from tests.conftest import home_tracking_uri

pytestmark = pytest.mark.integration
ABSENT = object()  # the field is left out of the record
TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters=";"), max_size=12)


def _numeric(spec: ColumnSpec) -> st.SearchStrategy[Any]:
    lo, hi = float(spec.lower), float(spec.upper)  # type: ignore[arg-type]
    inside = st.floats(lo, hi, allow_nan=False)
    return st.one_of(
        inside,
        st.integers(int(np.ceil(lo)), int(np.floor(hi))),
        inside.map(repr),  # a number written as text
        inside.map(lambda v: f"  {v!r} "),
        st.sampled_from([lo, hi, np.nextafter(lo, -np.inf), np.nextafter(hi, np.inf)]),
        st.sampled_from([hi * 10 + 1, -hi * 10 - 1, 10**400, float("inf"), float("-inf")]),
        st.sampled_from([float("nan"), None, ABSENT, *BLANK_STRINGS]),
        st.sampled_from([True, False, "1e3", "12,5", "١٢", "1_000", "0x10", [], {}]),
        TEXT,
    )


def _boolean(spec: ColumnSpec) -> st.SearchStrategy[Any]:
    levels = list(spec.levels or [0, 1])
    return st.one_of(
        st.sampled_from(levels),
        st.sampled_from([str(v) for v in levels] + [f" {str(v).upper()} " for v in levels]),
        st.sampled_from([True, False, 0, 1, 1.0, "yes", "No", "true", "F", 2, 0.5]),
        st.sampled_from([None, ABSENT, "", " ", "NA", [1]]),
        TEXT,
    )


def _categorical(spec: ColumnSpec) -> st.SearchStrategy[Any]:
    levels = list(spec.categories or {})
    return st.one_of(
        st.sampled_from(levels),
        st.sampled_from(levels).map(lambda v: f" {v}\t"),
        st.sampled_from(levels).map(str.upper),
        st.sampled_from([None, ABSENT, "", "null", 3, 2.5, True, {"a": 1}]),
        TEXT,
    )


def _id(i: int) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.just(f"C{i:05d}"),
        st.just(f"C{i:05d}-ünï"),
        st.sampled_from([f"C{i}\x00", f"C{i}\n", " " * (1 + i), "x" * (201 + i), None]),
    )


@st.composite
def customers(draw: st.DrawFn, contract: DataContract, n: int) -> list[dict[str, Any]]:
    """Draw ``n`` customer records, mostly valid, each field sometimes bad."""
    by_kind = {"numeric": _numeric, "boolean": _boolean, "categorical": _categorical}
    records = []
    for i in range(n):
        record: dict[str, Any] = {}
        if contract.id:
            good = draw(st.booleans()) or draw(st.booleans())  # 3 in 4 ids are fine
            record[contract.id] = f"C{i:05d}" if good else draw(_id(i))
        clean = draw(st.integers(0, 2)) > 0  # 2 in 3 records have only valid values
        for spec in contract.features:
            value = _valid(draw, spec) if clean else draw(by_kind[spec.kind](spec))
            if value is not ABSENT:
                record[spec.name] = value
        records.append(record)
    return records


def _valid(draw: st.DrawFn, spec: ColumnSpec) -> Any:
    if spec.kind == "numeric":
        return draw(st.floats(float(spec.lower), float(spec.upper), allow_nan=False))  # type: ignore[arg-type]
    if spec.kind == "boolean":
        return draw(st.sampled_from(list(spec.levels or [0, 1])))
    return draw(st.sampled_from(list(spec.categories or {})))


class Paths:
    """The four ways a user scores a record, each answering {index: (fields, probability)}."""

    def __init__(self, home: Path, tmp: Path) -> None:
        self.settings = Settings(
            home=home,
            tracking_uri=home_tracking_uri(home),
            database_url=f"sqlite:///{tmp / 'ops.db'}",
            serve_access_log=False,
            serve_key_cache_seconds=0.0,
            serve_batch_limit=1000,
            max_rejected_share=1.0,
        )
        self.tmp = tmp
        self.predictor = Predictor.from_registry(self.settings)
        self.contract = self.predictor.model.contract
        self.fields = [
            *self.contract.feature_names,
            *([self.contract.id] if self.contract.id else []),
        ]
        self.day = date(2026, 1, 1)

    def api(self, client: TestClient, key: str, records: list[dict]) -> dict[int, Any]:
        headers = {"Authorization": f"Bearer {key}"}
        out = {}
        for i, record in enumerate(records):
            response = client.post("/v1/predict", json=_json(record), headers=headers)
            assert response.status_code in (200, 422), response.text
            body = response.json()
            if response.status_code == 200:
                out[i] = (frozenset(), body["probability"])
            else:
                out[i] = (frozenset(e["field"] for e in body["errors"]), None)
        return out

    def api_batch(self, client: TestClient, key: str, records: list[dict]) -> dict[int, Any]:
        """Post the batch; refused records are taken out and the rest posted again.

        A 422 lists the problems of the first bad records (up to 50), by index, so the
        batch is re-sent without them until it is accepted.
        """
        headers = {"Authorization": f"Bearer {key}"}
        fields: dict[int, set[str]] = {}
        probabilities: dict[int, float] = {}
        pending = list(range(len(records)))
        while pending:
            payload = {"customers": [_json(records[i]) for i in pending]}
            response = client.post("/v1/predict/batch", json=payload, headers=headers)
            if response.status_code == 200:
                for i, item in zip(pending, response.json()["predictions"], strict=True):
                    probabilities[i] = item["probability"]
                break
            assert response.status_code == 422, response.text
            for error in response.json()["errors"]:
                fields.setdefault(pending[error["index"]], set()).add(error["field"])
            pending = [i for i in pending if i not in fields]
        return {
            i: (frozenset(fields.get(i, ())), probabilities.get(i)) for i in range(len(records))
        }

    def batch(self, records: list[dict], engine: str) -> dict[int, Any]:
        from churnops.batch import score

        path = self.tmp / f"records-{engine}.parquet"
        pq.write_table(_table(records, self.fields), path)
        self.day += timedelta(days=1)
        result = score(
            self.settings,
            path,
            scoring_date=self.day,
            engine=engine,  # type: ignore[arg-type]
            spark_master="local[1]",
        )
        engine_ = sa.create_engine(self.settings.database_url)
        with engine_.connect() as conn:
            scores = pd.read_sql(
                sa.text("SELECT customer_id, score FROM churn_scores WHERE scoring_date = :d"),
                conn,
                params={"d": self.day.isoformat()},
            )
            rejected = pd.read_sql(
                sa.text("SELECT row_number, reason FROM rejected_rows WHERE run_id = :r"),
                conn,
                params={"r": result["id"]},
            )
        engine_.dispose()
        by_id = dict(zip(scores["customer_id"], scores["score"], strict=True))
        out = {}
        for row, reason in zip(rejected["row_number"], rejected["reason"], strict=True):
            named = {f for f in self.fields if re.search(rf"(^|; ){re.escape(f)}: ", reason)}
            out[int(row)] = (frozenset(named), None)
        for i, record in enumerate(records):
            if i not in out:
                out[i] = (frozenset(), by_id[record[self.contract.id]])
        return out

    def pyfunc(self, records: list[dict]) -> dict[int, Any]:
        import mlflow

        # The very version the API serves, from this home's registry (other tests in the
        # session may have pointed MLflow's process-wide URIs elsewhere).
        mlflow.set_tracking_uri(self.settings.resolved_tracking_uri)
        mlflow.set_registry_uri(self.settings.resolved_tracking_uri)
        name, version = self.settings.model_name, self.predictor.version
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        # As a client sends them (JSON-safe): MLflow's own schema check fails on an integer
        # beyond any float before the model sees it.
        rows = [_json({f: r.get(f) for f in self.fields}) for r in records]
        frame = pd.DataFrame(rows, dtype=object)
        predicted = model.predict(frame)
        out = {}
        for i, (p, error) in enumerate(
            zip(predicted["probability"], predicted["error"], strict=True)
        ):
            if error is None or error != error:
                out[i] = (frozenset(), float(p))
            else:
                named = {f for f in self.fields if re.search(rf"(^|; ){re.escape(f)}: ", error)}
                out[i] = (frozenset(named), None)
        return out


def _json(record: dict[str, Any]) -> dict[str, Any]:
    """Return the record as JSON can carry it (NaN and infinities become text, as clients do)."""
    out = {}
    for k, v in record.items():
        if isinstance(v, float) and not np.isfinite(v):
            v = None if v != v else ("1e999" if v > 0 else "-1e999")
        elif isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**63:
            v = str(v)
        out[k] = v
    return out


def _table(records: list[dict[str, Any]], fields: list[str]) -> pa.Table:
    """Return the records as a Parquet table: one type per column, mixed columns as text.

    A file holds one type per column, so a column whose cells mix types is written as text
    (``str`` of each cell) — what a CSV export would hold; the rules read "12.5" like 12.5.
    """
    columns = {}
    for field in fields:
        cells = [_json({field: r[field]})[field] if field in r else None for r in records]
        kinds = {type(c) for c in cells if c is not None}
        if len(kinds) == 1 and kinds <= {str, float, bool}:
            columns[field] = pa.array(cells)
        elif kinds == {int}:
            columns[field] = pa.array(cells, type=pa.int64())
        else:
            columns[field] = pa.array([None if c is None else str(c) for c in cells], pa.string())
    return pa.table(columns)


@pytest.fixture(scope="module")
def paths(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Paths:
    return Paths(trained_home, tmp_path_factory.mktemp("parity"))


@pytest.fixture(scope="module")
def api(paths: Paths) -> Iterator[tuple[TestClient, str]]:
    key = create_key(paths.settings, name="parity", role="scorer")["key"]
    app = create_app(paths.settings, predictor=paths.predictor)
    with TestClient(app) as client:
        yield client, key


def test_every_path_gives_the_same_verdict_and_probability(
    paths: Paths, api: tuple[TestClient, str]
) -> None:
    """Generated batches get one verdict per record (same fields) and one probability."""
    client, key = api
    spark = shutil.which("java") is not None

    @settings(
        max_examples=4 if spark else 8,
        deadline=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],  # a shrink re-runs Spark for minutes
        suppress_health_check=list(HealthCheck),
    )
    @given(records=customers(paths.contract, 60))
    def check(records: list[dict[str, Any]]) -> None:
        answers = {
            "api": paths.api(client, key, records),
            "api_batch": paths.api_batch(client, key, records),
            "batch_pandas": paths.batch(records, "pandas"),
            "pyfunc": paths.pyfunc(records),
        }
        if spark:
            answers["batch_spark"] = paths.batch(records, "spark")
        reference = answers["api"]
        for name, answer in answers.items():
            for i in range(len(records)):
                fields, p = answer[i]
                ref_fields, ref_p = reference[i]
                assert fields == ref_fields, (name, i, repr(records[i]), fields, ref_fields)
                if ref_p is not None:
                    assert abs(p - ref_p) <= 1e-9, (name, i, records[i], p, ref_p)

    check()


def test_the_api_and_a_batch_run_give_the_same_reasons(
    paths: Paths, api: tuple[TestClient, str]
) -> None:
    """A high-risk customer's stored reasons are the API's ``?explain`` answer: the same
    features, contributions and the customer's own values."""
    from tests.factories import make_customers

    client, key = api
    frame = make_customers(80, seed=11).drop(columns="churn")
    records = [dict(zip(frame.columns, row, strict=True)) for row in frame.astype(object).values]
    paths.batch(records, "pandas")
    engine = sa.create_engine(paths.settings.database_url)
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text(
                "SELECT customer_id, reasons FROM churn_scores "
                "WHERE scoring_date = :d AND reasons IS NOT NULL"
            ),
            {"d": paths.day.isoformat()},
        ).all()
    engine.dispose()
    assert stored
    by_id = {r[paths.contract.id]: r for r in records}
    for customer_id, text in stored:
        response = client.post(
            "/v1/predict?explain=true",
            json=_json(by_id[customer_id]),
            headers={"Authorization": f"Bearer {key}"},
        )
        answered = response.json()["reasons"]
        batch = json.loads(text)
        assert [(r["feature"], r["value"]) for r in batch] == [
            (r["feature"], r["value"]) for r in answered
        ]
        for ours, theirs in zip(batch, answered, strict=True):
            assert abs(ours["contribution"] - theirs["contribution"]) <= 1e-6
