"""The REST client against a real ``churnops`` API on 127.0.0.1, and its retries against a
scripted loopback server (503 then 200, 429 with Retry-After, errors never retried)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import churnops
from churnops.client import (
    Client,
    Prediction,
    Reason,
    RequestRejectedError,
    ServerError,
)
from churnops.config import Settings
from churnops.serving import create_app
from churnops.serving.auth import create_key
from tests.conftest import free_port, home_tracking_uri, serve_app
from tests.factories import loyal_customer, make_customers, obvious_churner

pytestmark = pytest.mark.integration

BATCH_LIMIT = 40  # small, so a few records already take several requests


@contextmanager
def live_server(settings: Settings) -> Iterator[str]:
    """Serve ``create_app(settings)`` (the champion loaded from the registry) on loopback."""
    with serve_app(create_app(settings)) as url:
        yield url


@dataclass
class Served:
    """A running API on the session's trained home, a scorer key, and the same model here."""

    url: str
    key: str
    model: churnops.Model


@pytest.fixture(scope="module")
def served(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    settings = Settings(
        home=trained_home,
        tracking_uri=home_tracking_uri(trained_home),
        database_url=f"sqlite:///{tmp_path_factory.mktemp('client') / 'ops.db'}",
        serve_batch_limit=BATCH_LIMIT,
        serve_rate_limit=0.0,
        serve_audit=False,
        serve_access_log=False,
        serve_key_cache_seconds=0.0,
    )
    key = create_key(settings, "client-tests", "scorer")["key"]
    with live_server(settings) as url:
        yield Served(url, key, churnops.load_model(settings=settings))


def test_predict_returns_the_apis_answer_as_the_python_api_scores_it(served: Served) -> None:
    with Client(served.url, served.key) as client:
        risky = client.predict(obvious_churner())
        loyal = client.predict(loyal_customer(), explain=True)
    local = served.model.predict(pd.DataFrame([obvious_churner(), loyal_customer()]))
    assert isinstance(risky, Prediction)
    assert risky.customer_id == "RISKY"
    assert risky.churn is True
    assert loyal.churn is False
    assert risky.probability == pytest.approx(local["probability"][0], abs=1e-9)
    assert loyal.probability == pytest.approx(local["probability"][1], abs=1e-9)
    assert (risky.model.name, risky.model.version, risky.model.variant) == (
        served.model.name,
        served.model.version,
        "champion",
    )
    assert risky.reasons is None
    assert loyal.reasons is not None
    assert len(loyal.reasons) == 3
    assert all(isinstance(r, Reason) for r in loyal.reasons)
    assert {r.feature for r in loyal.reasons} <= set(served.model.contract.feature_names)


def test_predict_batch_splits_into_requests_of_the_batch_limit(served: Served) -> None:
    frame = make_customers(100, seed=5)  # 3 requests of at most 40
    records = frame.to_dict("records")
    records[7]["tenure"] = np.int64(records[7]["tenure"])  # numpy numbers travel as numbers
    with Client(served.url, served.key, batch_limit=BATCH_LIMIT) as client:
        predictions = client.predict_batch(records, explain=True)
    local = served.model.predict(frame)
    assert [p.customer_id for p in predictions] == frame["customer_id"].tolist()
    np.testing.assert_allclose(
        [p.probability for p in predictions], local["probability"], rtol=0, atol=1e-9
    )
    assert [p.churn for p in predictions] == local["churn"].tolist()
    assert all(p.reasons is not None and len(p.reasons) == 3 for p in predictions)


def test_a_refused_record_in_a_later_request_is_named_by_its_place_in_the_list(
    served: Served,
) -> None:
    records = make_customers(60, seed=6).to_dict("records")
    records[45]["contract"] = "Weekly"
    records[52]["total_charges"] = float("nan")  # sent as null: a missing value, not bad JSON
    with (
        Client(served.url, served.key, batch_limit=BATCH_LIMIT) as client,
        pytest.raises(RequestRejectedError) as caught,
    ):
        client.predict_batch(records)
    error = caught.value
    assert error.status == 422
    assert error.body["error"] == "ScoringInputError"
    problems = {p["index"]: p for p in error.body["errors"]}
    assert problems[45]["field"] == "contract"
    assert problems[45]["sent"] == "Weekly"
    assert problems[52]["field"] == "total_charges"
    assert problems[52]["sent"] is None
    assert "records 41 to 60" in error.message
    assert error.request_id


def test_refusals_are_not_retried(served: Served) -> None:
    with Client(served.url, "chk_not-a-key", retries=3, backoff=5.0) as client:
        started = time.perf_counter()
        with pytest.raises(RequestRejectedError) as caught:
            client.predict(obvious_churner())
    assert time.perf_counter() - started < 2.0  # no backoff wait: 401 is final
    assert caught.value.status == 401
    assert caught.value.body["error"] == "AuthenticationError"
    with (
        Client(served.url, served.key, batch_limit=BATCH_LIMIT + 1) as client,
        pytest.raises(RequestRejectedError, match="expects 1 to 40 customers"),
    ):
        client.predict_batch(make_customers(BATCH_LIMIT + 1, seed=7).to_dict("records"))


def test_health_and_ready(served: Served) -> None:
    with Client(served.url, served.key) as client:
        assert client.health() == {"status": "ok"}
        assert client.ready() is True
    nobody = f"http://127.0.0.1:{free_port()}"
    with Client(nobody, "k", retries=1, backoff=0.01) as client:
        assert client.ready() is False
        with pytest.raises(ServerError, match="after 2 attempt"):
            client.health()


# --- retries, against a scripted server -------------------------------------------------

PREDICTION = {
    "customer_id": "C1",
    "probability": 0.75,
    "churn": True,
    "model": {"name": "churn-model", "version": "3", "variant": "champion"},
}


@dataclass
class Script:
    """Answers to give, in order (the last one repeats), and the requests seen."""

    answers: list[tuple[int, dict[str, str], Any]]
    seen: list[dict[str, Any]]


@pytest.fixture
def scripted() -> Iterator[tuple[str, Script]]:
    """A loopback HTTP server that answers from a script and records each request."""
    script = Script([], [])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            script.seen.append(
                {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
            )
            status, headers, payload = script.answers[
                min(len(script.seen), len(script.answers)) - 1
            ]
            data = json.dumps(payload).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", script
    server.shutdown()
    server.server_close()
    thread.join(5)


BUSY = (503, {}, {"error": "ServiceUnavailableError", "message": "busy"})


def test_503_is_retried_then_the_answer_returned(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    script.answers = [BUSY, BUSY, (200, {}, PREDICTION)]
    with Client(url, "secret", retries=3, backoff=0.01) as client:
        prediction = client.predict({"customer_id": "C1"})
    assert prediction.probability == 0.75
    assert prediction.model.version == "3"
    assert len(script.seen) == 3
    assert all(s["body"] == {"customer_id": "C1"} for s in script.seen)
    assert script.seen[0]["headers"]["Authorization"] == "Bearer secret"
    assert script.seen[0]["path"] == "/v1/predict"


def test_429_waits_as_long_as_retry_after_says(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    limited = (429, {"Retry-After": "0.4"}, {"error": "RateLimitedError", "message": "slow down"})
    script.answers = [limited, (200, {}, PREDICTION)]
    with Client(url, "k", backoff=0.001) as client:
        started = time.perf_counter()
        client.predict({"customer_id": "C1"}, explain=True)
    assert time.perf_counter() - started >= 0.4
    assert len(script.seen) == 2
    assert script.seen[1]["path"] == "/v1/predict?explain=true"


def test_retries_end_with_a_server_error_carrying_the_last_answer(
    scripted: tuple[str, Script],
) -> None:
    url, script = scripted
    script.answers = [BUSY]
    with Client(url, "k", retries=2, backoff=0.01) as client, pytest.raises(ServerError) as caught:
        client.predict({"customer_id": "C1"})
    assert len(script.seen) == 3
    assert caught.value.status == 503
    assert caught.value.body["message"] == "busy"
    assert "after 3 attempt(s)" in caught.value.message


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, ServerError), (422, RequestRejectedError), (404, RequestRejectedError)],
)
def test_other_errors_are_not_retried(
    scripted: tuple[str, Script], status: int, error: type[Exception]
) -> None:
    url, script = scripted
    script.answers = [(status, {}, {"error": "Oops", "message": "no", "request_id": "r-1"})]
    with Client(url, "k", retries=3, backoff=0.01) as client, pytest.raises(error) as caught:
        client.predict({"customer_id": "C1"})
    assert len(script.seen) == 1
    assert isinstance(caught.value, churnops.ChurnopsError)
    assert caught.value.request_id == "r-1"
    assert f"answered {status} Oops: no" in str(caught.value)
