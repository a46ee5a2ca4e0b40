"""Behaviour of the scoring API through FastAPI's TestClient."""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from churnops.errors import RegistryError
from churnops.serving.state import canary_bucket
from tests.conftest import REDIS_URL, require_service
from tests.factories import loyal_customer, obvious_churner


def test_scores_one_customer_with_reasons(api: Any) -> None:
    """It returns id, probability, churn flag, model and the top 3 signed reasons, each with
    the customer's own value (as sent: a category, a boolean level, a number)."""
    r = api.post("/v1/predict?explain=true", obvious_churner())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["customer_id"] == "RISKY"
    assert 0 <= body["probability"] <= 1
    assert body["model"] == {"name": "churn-model", "version": "1", "variant": "champion"}
    assert len(body["reasons"]) == 3
    assert set(body["reasons"][0]) == {"feature", "contribution", "value", "text"}
    for reason in body["reasons"]:
        assert reason["value"] == obvious_churner()[reason["feature"]]
        value = reason["value"]
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        signed = f"{reason['contribution']:+.2f}"
        assert reason["text"] == f"{reason['feature']} = {shown} ({signed} log-odds)"
    batch = api.post("/v1/predict/batch?explain=true", {"customers": [obvious_churner()]})
    assert batch.json()["predictions"][0]["reasons"] == body["reasons"]
    assert r.headers["x-request-id"]


def test_obvious_churner_outranks_loyal_customer_and_id_does_not_matter(api: Any) -> None:
    """An obvious churner scores above a loyal customer; the id never changes a score."""
    risky = api.post("/v1/predict", obvious_churner()).json()["probability"]
    loyal = api.post("/v1/predict", loyal_customer()).json()["probability"]
    renamed = api.post("/v1/predict", {**obvious_churner(), "customer_id": "X"}).json()
    assert risky > loyal
    assert renamed["probability"] == risky


def test_batch_keeps_order_and_matches_single(api: Any) -> None:
    """Batch results come back in request order, equal to one-by-one scores."""
    customers = [obvious_churner(), loyal_customer(), {**loyal_customer(), "customer_id": "L2"}]
    r = api.post("/v1/predict/batch", {"customers": customers})
    assert r.status_code == 200, r.text
    got = r.json()["predictions"]
    assert [p["customer_id"] for p in got] == ["RISKY", "LOYAL", "L2"]
    for c, p in zip(customers, got, strict=True):
        single = api.post("/v1/predict", c).json()["probability"]
        assert abs(single - p["probability"]) < 1e-12


@pytest.mark.parametrize(
    ("headers", "path", "status"),
    [
        ({}, "/v1/predict", 401),
        ({"Authorization": "Bearer nope"}, "/v1/predict", 401),
        ({"X-API-Key": "nope"}, "/v1/predict", 401),
        ({"Authorization": "Basic abc"}, "/v1/predict", 401),
        ("scorer-bearer", "/v1/predict", 200),
        ("scorer-x-api-key", "/v1/predict", 200),
        ("admin-bearer", "/v1/predict", 200),
        ("scorer-bearer", "/v1/admin/reload", 403),
        ("admin-bearer", "/v1/admin/reload", 200),
        ({}, "/v1/admin/reload", 401),
    ],
)
def test_auth_matrix(api: Any, headers: Any, path: str, status: int) -> None:
    """Without a valid key it answers 401; with the wrong role 403; otherwise it serves."""
    if isinstance(headers, str):
        role, how = headers.split("-", 1)
        key = getattr(api, role)
        headers = {"Authorization": f"Bearer {key}"} if how == "bearer" else {"X-API-Key": key}
    r = api.client.post(path, json=obvious_churner(), headers=headers)
    assert r.status_code == status, r.text
    if status == 401:
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_revoked_key_is_refused(api: Any) -> None:
    """A revoked key gets 401 (the key cache refreshes)."""
    from churnops.serving.auth import list_keys, revoke_key

    assert api.post("/v1/predict", obvious_churner()).status_code == 200
    name = next(k["name"] for k in list_keys(api.settings) if k["role"] == "scorer")
    revoke_key(api.settings, name)
    assert api.post("/v1/predict", obvious_churner()).status_code == 401


def test_keys_are_stored_only_as_hashes(api: Any) -> None:
    """The store holds a SHA-256 and a short prefix, never the key."""
    from churnops.store import get_engine

    with get_engine(api.settings).connect() as conn:
        rows = conn.execute(sa.text("select prefix, key_hash from api_keys")).all()
    assert rows
    for prefix, digest in rows:
        assert len(digest) == 64
        assert api.scorer not in (prefix, digest)
        assert len(prefix) < 12


def test_no_auth_mode_serves_without_keys(make_api: Any) -> None:
    """With --insecure-no-auth a request without a key is scored."""
    api = make_api(serve_no_auth=True)
    assert api.post("/v1/predict", obvious_churner(), key=None).status_code == 200


def test_rate_limit_answers_429_with_retry_after(make_api: Any) -> None:
    """Past its burst a key gets 429 with Retry-After; another key is unaffected."""
    api = make_api(serve_rate_limit=0.5, serve_rate_burst=2)
    codes = [api.post("/v1/predict", obvious_churner()).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    r = api.post("/v1/predict", obvious_churner())
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["retry_after"] >= 1
    assert api.post("/v1/predict", obvious_churner(), key="admin").status_code == 200


def test_rate_limit_is_shared_through_redis(make_api: Any) -> None:
    """Two apps (two workers) on one Redis share one bucket per key."""
    require_service(REDIS_URL, "Redis")
    import redis

    redis.from_url(REDIS_URL).delete(
        *redis.from_url(REDIS_URL).keys("churnops:ratelimit:*") or [b"x"]
    )
    first = make_api(serve_rate_limit=0.2, serve_rate_burst=3, redis_url=REDIS_URL)
    second = make_api(serve_rate_limit=0.2, serve_rate_burst=3, redis_url=REDIS_URL)
    second.scorer = first.scorer  # same key, two processes' worth of apps
    codes = [
        api.post("/v1/predict", obvious_churner()).status_code
        for api in (first, second, first, second)
    ]
    assert codes == [200, 200, 200, 429]


def test_body_too_large_is_413(make_api: Any) -> None:
    """A body above the limit gets 413, by Content-Length or while streaming."""
    api = make_api(serve_max_body_bytes=2048)
    big = {**obvious_churner(), "customer_id": "x" * 5000}
    assert api.post("/v1/predict", big).status_code == 413

    def chunks() -> Any:
        for _ in range(10):
            yield b" " * 1000

    r = api.client.post(
        "/v1/predict", content=chunks(), headers={"Authorization": f"Bearer {api.scorer}"}
    )
    assert r.status_code == 413
    assert r.json()["error"] == "PayloadTooLargeError"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"tenure": None}, "tenure", "required field is missing"),
        ({"tenure": "ten"}, "tenure", "expects a number"),
        ({"tenure": 10**6}, "tenure", "number outside the allowed range [0, 144]"),
        ({"tenure": "1e999"}, "tenure", "number is not finite"),
        ({"contract": "Weekly"}, "contract", "unknown category"),
        ({"contract": True}, "contract", "expects text (one of the allowed categories)"),
        ({"partner": "maybe"}, "partner", "expects one of: No, Yes"),
        ({"customer_id": None}, "customer_id", "required field is missing"),
        ({"customer_id": "C-1\x00"}, "customer_id", "must not contain control characters"),
    ],
)
def test_each_kind_of_422_names_field_sent_and_allowed(
    api: Any, change: dict[str, Any], field: str, message: str
) -> None:
    """A bad record gets 422 saying which field, what was sent and what is allowed."""
    body = {**obvious_churner(), **change}
    if change.get(field, 0) is None:
        body.pop(field)
    r = api.post("/v1/predict", body)
    assert r.status_code == 422, r.text
    problem = r.json()["errors"][0]
    assert problem["field"] == field
    assert problem["message"] == message
    assert "allowed" in problem
    if field == "contract" and message == "unknown category":
        assert problem["sent"] == "Weekly"
        assert "Month-to-month" in problem["allowed"]


def test_text_numbers_padded_levels_and_unknown_fields_are_read_as_batch_reads_them(
    api: Any,
) -> None:
    """'12.5', ' yes ', ' Two year ' and an unknown field: 200, as a batch row would be scored."""
    body = {**obvious_churner(), "tenure": " 12.5 ", "partner": " yes "}
    body.update({"contract": " Two year ", "favourite_colour": "blue"})
    r = api.post("/v1/predict", body)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'"text"', "JSON object"),
    ],
)
def test_unparseable_bodies_are_422(api: Any, body: bytes, fragment: str) -> None:
    """Invalid JSON or a non-object body is a 422, never a 500."""
    r = api.client.post("/v1/predict", content=body, headers={"X-API-Key": api.scorer})
    assert r.status_code == 422
    assert fragment in r.json()["message"]


def test_batch_422s_say_which_customer(make_api: Any) -> None:
    """Batch errors carry the customer's index; too many customers is a 422 with the limit."""
    api = make_api(serve_batch_limit=3)
    bad = {**loyal_customer(), "contract": "Weekly"}
    r = api.post("/v1/predict/batch", {"customers": [obvious_churner(), bad]})
    assert r.status_code == 422
    assert r.json()["errors"][0]["index"] == 1  # the position in "customers"
    assert r.json()["message"] == "record 2: field 'contract': unknown category, sent 'Weekly'."
    r = api.post("/v1/predict/batch", {"customers": [obvious_churner()] * 4})
    assert r.status_code == 422
    assert r.json()["errors"][0]["allowed"] == {"min": 1, "max": 3}
    assert api.post("/v1/predict/batch", {"people": []}).status_code == 422


def test_not_ready_is_503_then_ready(make_api: Any, champion: Any) -> None:
    """Before the model is loaded /readyz and predictions answer 503; then they serve."""
    release = threading.Event()

    def slow_loader(alias: str) -> Any:
        release.wait(10)
        return champion

    api = make_api(loader=slow_loader)
    assert api.client.get("/healthz").status_code == 200
    assert api.client.get("/readyz").status_code == 503
    r = api.post("/v1/predict", obvious_churner())
    assert r.status_code == 503
    assert r.json()["error"] == "ModelNotReadyError"
    release.set()
    for _ in range(100):
        if api.client.get("/readyz").status_code == 200:
            break
        time.sleep(0.05)
    assert api.post("/v1/predict", obvious_churner()).status_code == 200


def test_failed_reload_keeps_the_old_model_and_says_why(make_api: Any, champion: Any) -> None:
    """A reload that fails answers 409 with the reason; the old model keeps serving."""
    calls = {"n": 0}

    def loader(alias: str) -> Any:
        calls["n"] += 1
        if calls["n"] > 1:
            raise RegistryError(
                "Cannot load models:/churn-model/9: corrupt file /srv/secret/model.joblib"
            )
        return champion

    api = make_api(loader=loader)
    for _ in range(100):
        if api.client.get("/readyz").status_code == 200:
            break
        time.sleep(0.05)
    r = api.post("/v1/admin/reload", key="admin")
    assert r.status_code == 409
    body = r.json()
    assert body["serving_version"] == "1"
    assert "corrupt" in body["message"]
    assert "/srv/secret" not in r.text  # no internal paths in responses
    assert api.post("/v1/predict", obvious_churner()).json()["model"]["version"] == "1"


def test_reload_swaps_to_the_new_version(make_api: Any, champion: Any, challenger: Any) -> None:
    """A successful reload returns old and new versions and serves the new one."""
    versions = iter([champion, challenger])
    api = make_api(loader=lambda alias: next(versions))
    for _ in range(100):
        if api.client.get("/readyz").status_code == 200:
            break
        time.sleep(0.05)
    r = api.post("/v1/admin/reload", key="admin")
    assert r.json() == {
        "old_version": "1",
        "new_version": "2",
        "challenger_version": None,
        "changed": True,
    }
    assert api.post("/v1/predict", obvious_churner()).json()["model"]["version"] == "2"


def test_a_model_install_takes_the_heap_out_of_full_collections(
    make_api: Any, champion: Any, challenger: Any
) -> None:
    """A reload freezes what is alive (gc.freeze): full collections stop walking it."""
    versions = iter([champion, challenger])
    api = make_api(loader=lambda alias: next(versions))
    _ready(api)
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    assert api.post("/v1/admin/reload", key="admin").status_code == 200
    # the libraries and the model: far more than a request's own objects
    assert gc.get_freeze_count() > 50_000


def _ready(api: Any) -> None:
    for _ in range(200):
        if api.client.get("/readyz").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError("never ready")


def test_canary_is_deterministic_by_customer_id(
    make_api: Any, champion: Any, challenger: Any
) -> None:
    """The same customer id always lands on the same variant, at about the configured share."""
    api = make_api(
        loader=lambda alias: champion if alias == "champion" else challenger,
        serve_canary_share=0.3,
    )
    _ready(api)
    ids = [f"C{i:04d}" for i in range(60)]
    served = {}
    for cid in ids:
        body = api.post("/v1/predict", {**loyal_customer(), "customer_id": cid}).json()
        served[cid] = body["model"]["variant"]
        expected = "challenger" if canary_bucket(cid) < 0.3 else "champion"
        assert served[cid] == expected
        assert body["model"]["version"] == ("2" if expected == "challenger" else "1")
    again = api.post(
        "/v1/predict/batch", {"customers": [{**loyal_customer(), "customer_id": c} for c in ids]}
    ).json()["predictions"]
    assert [p["model"]["variant"] for p in again] == [served[c] for c in ids]
    assert 5 < sum(v == "challenger" for v in served.values()) < 35


def test_canary_batch_422_counts_records_in_the_request(
    make_api: Any, champion: Any, challenger: Any
) -> None:
    """A bad record the canary sends to the challenger is named by its place in the request."""
    api = make_api(
        loader=lambda alias: champion if alias == "champion" else challenger,
        serve_canary_share=0.3,
    )
    _ready(api)
    ids = [f"C{i:04d}" for i in range(60)]
    stay = [c for c in ids if canary_bucket(c) >= 0.3][:3]  # champion's
    moved = [c for c in ids if canary_bucket(c) < 0.3][:2]  # challenger's
    customers = [{**loyal_customer(), "customer_id": c} for c in [moved[0], *stay, moved[1]]]
    customers[4]["contract"] = "Weekly"  # the challenger's 2nd record, the request's 5th
    r = api.post("/v1/predict/batch", {"customers": customers})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["index"] == 4
    assert r.json()["message"] == "record 5: field 'contract': unknown category, sent 'Weekly'."


def test_shadow_scores_challenger_logs_it_and_returns_champion(
    make_api: Any, champion: Any, challenger: Any
) -> None:
    """In shadow mode the response is the champion's; the challenger's score is logged."""
    api = make_api(
        loader=lambda alias: champion if alias == "champion" else challenger,
        serve_shadow=True,
        serve_log_sample=0.0,
    )
    _ready(api)
    r = api.post("/v1/predict", obvious_churner())
    assert r.json()["model"]["variant"] == "champion"
    api.client.__exit__(None, None, None)  # lifespan end flushes the writer
    from churnops.store import get_engine

    with get_engine(api.settings).connect() as conn:
        rows = conn.execute(
            sa.text("select variant, model_version, customer_id from prediction_log")
        ).all()
    assert rows == [("shadow", "2", "RISKY")]


def test_audit_rows_are_written(api: Any) -> None:
    """Every scoring call leaves an audit row: key name, route, ids, digest, model, status."""
    api.post("/v1/predict", obvious_churner())
    api.post("/v1/predict/batch", {"customers": [obvious_churner(), loyal_customer()]})
    api.post("/v1/predict", {**obvious_churner(), "contract": "Weekly"})
    api.client.__exit__(None, None, None)
    from churnops.store import get_engine

    with get_engine(api.settings).connect() as conn:
        rows = conn.execute(
            sa.text(
                "select key_name, route, status, customer_ids, payload_digest, model_version,"
                " variant, probabilities, latency_ms from audit_log order by id"
            )
        ).all()
    assert [(r.route, r.status) for r in rows] == [
        ("/v1/predict", 200),
        ("/v1/predict/batch", 200),
        ("/v1/predict", 422),
    ]
    assert all(r.key_name.startswith("scorer-") for r in rows)
    assert rows[1].customer_ids == '["RISKY","LOYAL"]'
    assert all(len(r.payload_digest) == 64 and r.latency_ms > 0 for r in rows)
    assert rows[0].model_version == "1"
    assert rows[0].variant == "champion"
    assert api.scorer not in str(rows)


def test_metrics_series_are_present(api: Any) -> None:
    """/metrics exposes requests, latency, probabilities, churn flags, model info, reloads."""
    api.post("/v1/predict", obvious_churner())
    api.post("/v1/predict/batch", {"customers": [obvious_churner(), loyal_customer()]})
    api.post("/v1/admin/reload", key="admin")
    text = api.client.get("/metrics").text
    for series in (
        'churnops_requests_total{route="/v1/predict",status="200",variant="champion"} 1.0',
        'churnops_request_latency_seconds_bucket{le="0.01",route="/v1/predict"}',
        'churnops_probability_count{variant="champion"} 3.0',
        'churnops_predictions_total{variant="champion"} 3.0',
        "churnops_churn_flags_total",
        'churnops_model_info{name="churn-model",role="champion",source="registry",version="1"} 1.0',
        'churnops_reloads_total{outcome="ok"}',
        "churnops_event_loop_lag_seconds_bucket",
    ):
        assert series in text, series


def test_model_info_describes_the_contract(api: Any) -> None:
    """GET /v1/model has version, metrics, threshold, features and loaded_at."""
    body = api.get("/v1/model").json()
    assert body["version"] == "1"
    assert 0 < body["threshold"] < 1
    assert "roc_auc" in body["metrics"]
    contract = next(f for f in body["features"] if f["name"] == "contract")
    assert "Month-to-month" in contract["categories"]
    assert body["loaded_at"]


def test_openapi_shows_customer_fields_and_example(api: Any) -> None:
    """The OpenAPI document describes CustomerIn from the contract, with an example."""
    spec = api.client.get("/openapi.json").json()
    customer = spec["components"]["schemas"]["CustomerIn"]
    assert "Month-to-month" in customer["properties"]["contract"]["enum"]
    assert customer["example"]["customer_id"]
    assert "tenure" in customer["required"]
    body = spec["paths"]["/v1/predict"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("CustomerIn")
    reason = spec["components"]["schemas"]["Reason"]
    assert {"feature", "contribution", "value", "text"} <= set(reason["required"])
