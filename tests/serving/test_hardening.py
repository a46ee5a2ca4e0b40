"""Issue 12 hardening: nesting depth, rate limits before auth, protocol details."""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from typing import Any

import pytest

from churnops.scoring import Predictor
from churnops.serving.auth import create_key
from tests.conftest import REDIS_URL, free_port, require_service
from tests.factories import loyal_customer, obvious_churner

# -- 4. nesting depth ----------------------------------------------------------------------


@pytest.mark.parametrize("route", ["/v1/predict", "/v1/predict/batch"])
def test_deeply_nested_json_is_422_naming_the_limit_without_traceback(
    api: Any, route: str, caplog: pytest.LogCaptureFixture
) -> None:
    """2 KB of brackets is a 422 that names the depth limit; nothing is logged as an error."""
    headers = {"X-API-Key": api.scorer}
    with caplog.at_level(logging.INFO):
        for body in (b"[" * 1000 + b"]" * 1000, b'{"a":' * 500 + b"1" + b"}" * 500):
            r = api.client.post(route, content=body, headers=headers)
            assert r.status_code == 422, r.text
            assert "the limit is 32" in r.json()["message"]
            assert r.json()["errors"][0]["allowed"] == {"max_depth": 32}
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR or rec.exc_info]


def test_brackets_inside_strings_do_not_count_as_nesting(make_api: Any) -> None:
    """Brackets and escaped quotes inside text are text: such records still score."""
    api = make_api(serve_max_json_depth=3)
    odd_id = '[[[[{{{{\\"[[[[' + "[" * 40
    r = api.post("/v1/predict", {**obvious_churner(), "customer_id": odd_id})
    assert r.status_code == 200, r.text
    assert r.json()["customer_id"] == odd_id
    batch = {"customers": [{**loyal_customer(), "customer_id": f"[{i}\\"} for i in range(50)]}
    assert api.post("/v1/predict/batch", batch).status_code == 200
    r = api.post("/v1/predict/batch", {"customers": [{**loyal_customer(), "x": [[1]]}]})
    assert r.status_code == 422
    assert r.json()["errors"][0]["sent"] == 5


# -- 6. rate limits ------------------------------------------------------------------------


def test_unknown_keys_are_limited_by_address_before_authentication(make_api: Any) -> None:
    """Made-up keys spend the address's bucket: 401s, then 429 for that address, any key."""
    api = make_api(serve_ip_rate_limit=0.2, serve_ip_rate_burst=3)
    codes = [api.post("/v1/predict", obvious_churner(), key=f"chk_made_up_{i}") for i in range(4)]
    assert [r.status_code for r in codes] == [401, 401, 401, 429]
    assert int(codes[-1].headers["retry-after"]) >= 1
    assert "address" in codes[-1].json()["message"]
    assert api.post("/v1/predict", obvious_churner()).status_code == 429
    assert api.client.get("/healthz").status_code == 200  # probes are not limited


def test_a_flood_of_unknown_keys_reads_the_store_at_most_once_a_second(make_api: Any) -> None:
    """However many made-up keys arrive, the key store is read once per interval."""
    api = make_api(serve_key_cache_seconds=60.0, serve_ip_rate_limit=0.0)
    keys = api.client.app.state.services.keys
    reads = []
    original = keys.refresh

    def counting_refresh() -> None:
        reads.append(time.monotonic())
        original()

    keys.refresh = counting_refresh
    started = time.monotonic()
    for i in range(60):
        assert api.post("/v1/predict", obvious_churner(), key=f"chk_nope_{i}").status_code == 401
    elapsed = time.monotonic() - started
    assert len(reads) <= int(elapsed) + 1
    new_key = create_key(api.settings, "created-late", "scorer")["key"]
    time.sleep(1.1)
    assert api.post("/v1/predict", obvious_churner(), key=new_key).status_code == 200


def test_address_buckets_are_shared_through_redis(make_api: Any) -> None:
    """Two apps (two workers) on one Redis share each address's bucket."""
    require_service(REDIS_URL, "Redis")
    import redis

    redis.from_url(REDIS_URL).delete("churnops:ratelimit:address:testclient")
    limits = {"serve_ip_rate_limit": 0.2, "serve_ip_rate_burst": 3, "redis_url": REDIS_URL}
    first, second = make_api(**limits), make_api(**limits)
    codes = [
        api.post("/v1/predict", obvious_churner(), key="chk_unknown").status_code
        for api in (first, second, first, second)
    ]
    assert codes == [401, 401, 401, 429]


@pytest.mark.parametrize(
    ("policy", "codes"),
    [
        ("local", [200, 200, 429, 429]),
        ("open", [200, 200, 200, 200]),
        ("closed", [503, 503, 503, 503]),
    ],
)
def test_redis_down_follows_the_configured_policy_with_metric_and_one_warning(
    make_api: Any, caplog: pytest.LogCaptureFixture, policy: str, codes: list[int]
) -> None:
    """Unreachable Redis: limit in-process (default), not at all, or 503 — never silently."""
    api = make_api(
        serve_rate_limit=0.1,
        serve_rate_burst=2,
        serve_ip_rate_limit=0.0,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        serve_rate_limit_on_redis_error=policy,
    )
    with caplog.at_level(logging.WARNING, logger="churnops.serving"):
        got = [api.post("/v1/predict", obvious_churner()) for _ in codes]
    assert [r.status_code for r in got] == codes
    if policy == "closed":
        assert got[0].headers["retry-after"] == "1"
    warnings = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(warnings) == 1
    metrics = api.client.get("/metrics").text
    assert f'churnops_ratelimit_redis_unavailable_total{{policy="{policy}"}} 4.0' in metrics


def test_default_redis_policy_is_local() -> None:
    """Without a setting, an outage falls back to in-process buckets."""
    from churnops.config import Settings

    assert Settings().serve_rate_limit_on_redis_error == "local"


# -- 7. protocol details -------------------------------------------------------------------


def test_head_probes_answer_without_a_body(make_api: Any, champion: Predictor) -> None:
    """HEAD /healthz and /readyz: 200 (503 while loading), no body."""
    release = threading.Event()

    def slow_loader(alias: str) -> Predictor:
        release.wait(10)
        return champion

    api = make_api(loader=slow_loader)
    r = api.client.head("/readyz")
    assert (r.status_code, r.content, r.headers["retry-after"]) == (503, b"", "5")
    r = api.client.head("/healthz")
    assert (r.status_code, r.content) == (200, b"")
    release.set()
    _wait_ready(api)
    r = api.client.head("/readyz")
    assert (r.status_code, r.content) == (200, b"")


def _wait_ready(api: Any) -> None:
    for _ in range(200):
        if api.client.get("/readyz").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError("the app never became ready")


def test_openapi_declares_key_schemes_on_exactly_the_keyed_routes(make_api: Any) -> None:
    """Bearer or X-API-Key on /v1/ routes (either one); none on probes and metrics."""
    spec = make_api().client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key.",
    }
    assert schemes["apiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    either = [{"bearerAuth": []}, {"apiKeyHeader": []}]
    for path, method in [
        ("/v1/predict", "post"),
        ("/v1/predict/batch", "post"),
        ("/v1/model", "get"),
        ("/v1/admin/reload", "post"),
    ]:
        assert spec["paths"][path][method]["security"] == either
    for path in ("/healthz", "/readyz", "/metrics"):
        assert spec["paths"][path]["get"]["security"] == []
    open_spec = make_api(serve_no_auth=True).client.get("/openapi.json").json()
    assert "securitySchemes" not in open_spec["components"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_every_asset_from_this_server(api: Any, page: str) -> None:
    """No CDN: every script, stylesheet and icon the page names is served here."""
    r = api.client.get(page)
    assert r.status_code == 200
    assert not re.search(r"https?://", r.text), "the page names an outside URL"
    urls = set(re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", r.text))
    urls |= set(re.findall(r"""url\s*:\s*["']([^"']+)["']""", r.text))
    assets = [u for u in urls if u.endswith((".js", ".css", ".png"))]
    assert len(assets) >= (3 if page == "/docs" else 1), urls
    assert "/openapi.json" in urls or "/openapi.json" in r.text
    for url in urls:
        assert url.startswith("/"), url
        assert api.client.get(url).status_code == 200, url


def _as(kind: type[Predictor], champion: Predictor) -> Any:
    """Return ``champion`` as a ``kind`` (a Predictor subclass that notes or slows scoring)."""
    fields = dataclasses.fields(champion)
    return kind(**{f.name: getattr(champion, f.name) for f in fields if f.init})


@dataclasses.dataclass
class SlowPredictor(Predictor):
    """The champion, but scoring a batch that holds customer 'SLOW' takes a second."""

    def score_many(self, records: Any, ids_judged: bool = False) -> Any:
        if any(isinstance(r, dict) and r.get("customer_id") == "SLOW" for r in records):
            time.sleep(1.0)
        return super().score_many(records, ids_judged)


def test_batch_scoring_is_bounded_and_never_blocks_the_event_loop(
    make_api: Any, champion: Predictor
) -> None:
    """A timed-out batch keeps its slot while it scores: the next gets 503, probes stay fast."""
    slow = _as(SlowPredictor, champion)
    api = make_api(
        loader=lambda alias: slow,
        serve_inline_batch=0,  # every batch goes to the scoring threads
        serve_max_concurrent_batches=1,
        serve_batch_queue=0,
        serve_timeout_seconds=0.4,
    )
    _wait_ready(api)
    slow_batch = {"customers": [{**obvious_churner(), "customer_id": "SLOW"}]}
    quick_batch = {"customers": [obvious_churner(), loyal_customer()]}
    first: list[Any] = []

    def send_slow() -> None:
        first.append(api.post("/v1/predict/batch", slow_batch))

    worker = threading.Thread(target=send_slow)
    started = time.monotonic()
    worker.start()
    time.sleep(0.15)
    probe = time.monotonic()
    assert api.client.get("/healthz").status_code == 200
    assert time.monotonic() - probe < 0.3  # the loop is free while the batch scores
    assert api.post("/v1/predict", obvious_churner()).status_code == 200
    worker.join(5)
    assert first[0].status_code == 504
    assert time.monotonic() - started < 0.9  # the timeout fired before scoring ended
    busy = api.post("/v1/predict/batch", quick_batch)
    assert busy.status_code == 503, busy.text
    assert busy.headers["retry-after"] == "1"
    time.sleep(max(0.0, started + 1.2 - time.monotonic()))
    assert api.post("/v1/predict/batch", quick_batch).status_code == 200
    assert "churnops_scoring_rejected_total 1.0" in api.client.get("/metrics").text


@dataclasses.dataclass
class ThreadNotingPredictor(Predictor):
    """The champion, noting the thread that scores each batch."""

    threads: list[str] = dataclasses.field(default_factory=list)

    def score_many(self, records: Any, ids_judged: bool = False) -> Any:
        self.threads.append(threading.current_thread().name)
        return super().score_many(records, ids_judged)


def test_small_batches_are_scored_on_the_event_loop_larger_ones_in_threads(
    make_api: Any, champion: Predictor
) -> None:
    """Up to serve_inline_batch customers no thread hop is paid; beyond, a scoring thread."""
    noting = _as(ThreadNotingPredictor, champion)
    api = make_api(loader=lambda alias: noting, serve_inline_batch=2)
    _wait_ready(api)
    loop_thread = api.client.portal.call(lambda: threading.current_thread().name)
    noting.threads.clear()  # loading scored an example
    for n in (1, 2, 3):
        answer = api.post("/v1/predict/batch", {"customers": [obvious_churner()] * n})
        assert answer.status_code == 200, answer.text
    assert noting.threads[:2] == [loop_thread, loop_thread]
    assert len(noting.threads) == 3
    assert noting.threads[2].startswith("churnops-scoring")


def test_trusted_hosts_refuse_other_host_headers(make_api: Any) -> None:
    """With serve_trusted_hosts set, another Host header gets 400; unset, any host works."""
    api = make_api(serve_trusted_hosts=["api.example.com", "*.internal"])
    assert api.client.get("/healthz").status_code == 400  # TestClient sends 'testserver'
    for host in ("api.example.com", "scoring.internal"):
        assert api.client.get("/healthz", headers={"Host": host}).status_code == 200
    assert make_api().client.get("/healthz").status_code == 200


def test_batches_wait_in_a_bounded_queue_for_a_scoring_thread(
    make_api: Any, champion: Predictor
) -> None:
    """One running, one waiting (then served), a third refused with 503."""
    api = make_api(
        loader=lambda alias: _as(SlowPredictor, champion),
        serve_inline_batch=0,  # every batch goes to the scoring threads
        serve_max_concurrent_batches=1,
        serve_batch_queue=1,
    )
    _wait_ready(api)
    slow_batch = {"customers": [{**obvious_churner(), "customer_id": "SLOW"}]}
    quick_batch = {"customers": [obvious_churner()]}
    answers: dict[str, Any] = {}

    def send(name: str, body: dict[str, Any]) -> None:
        answers[name] = api.post("/v1/predict/batch", body)

    threads = [
        threading.Thread(target=send, args=("running", slow_batch)),
        threading.Thread(target=send, args=("waiting", quick_batch)),
    ]
    for thread in threads:
        thread.start()
        time.sleep(0.2)
    refused = api.post("/v1/predict/batch", quick_batch)
    for thread in threads:
        thread.join(10)
    assert refused.status_code == 503
    assert answers["running"].status_code == 200
    assert answers["waiting"].status_code == 200
