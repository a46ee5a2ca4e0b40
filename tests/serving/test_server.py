"""Integration: a real uvicorn server on 127.0.0.1 — reload under load, OpenAPI fuzzing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from churnops.scoring import Predictor
from churnops.serving import create_app
from churnops.serving.auth import create_key
from tests.conftest import serve_app
from tests.factories import loyal_customer, obvious_churner

pytestmark = pytest.mark.integration


@pytest.fixture
def server(serving_settings: Any, champion: Predictor) -> Iterator[dict[str, Any]]:
    """A real server whose loader alternates between two versions of the registered model."""
    import dataclasses

    from churnops.registry import load_model

    settings = serving_settings.model_copy(update={"serve_rate_limit": 0.0})
    calls = {"n": 0}

    def loader(alias: str) -> Predictor:
        # A real registry load every time (MLflow + joblib + compile), relabelled so the
        # test can see the swap.
        calls["n"] += 1
        loaded = Predictor.from_loaded(load_model(settings, alias=alias))
        return dataclasses.replace(loaded, version=str(calls["n"]))

    admin = create_key(settings, "srv-admin", "admin")["key"]
    app = create_app(settings, predictor=champion, loader=loader)
    with serve_app(app) as url:
        yield {"url": url, "admin": admin}


def test_reload_under_concurrent_load_fails_no_request(server: dict[str, Any]) -> None:
    """While reloads swap the model, every prediction succeeds with a whole model."""
    url, headers = server["url"], {"Authorization": f"Bearer {server['admin']}"}
    results: list[tuple[int, str]] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=10) as c:
            for i in range(400):  # bounded: stops by itself
                if stop.is_set() and i > 20:
                    break
                body = obvious_churner() if i % 2 else loyal_customer()
                r = c.post("/v1/predict", json=body)
                version = r.json()["model"]["version"] if r.status_code == 200 else r.text
                results.append((r.status_code, version))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    reloads = []
    with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
        for _ in range(3):
            time.sleep(0.2)
            r = c.post("/v1/admin/reload")
            assert r.status_code == 200, r.text
            reloads.append(r.json())
    stop.set()
    for t in threads:
        t.join(60)
    assert [r["new_version"] for r in reloads] == ["1", "2", "3"]
    assert results
    failures = [r for r in results if r[0] != 200]
    assert failures == []
    assert len({v for _, v in results}) >= 2  # requests saw more than one version


def test_openapi_fuzzing_finds_no_server_error(server: dict[str, Any]) -> None:
    """Schemathesis-generated requests from the OpenAPI spec never get a 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(f"{server['url']}/openapi.json")
    headers = {"Authorization": f"Bearer {server['admin']}"}
    failures = []
    for op in schema.get_all_operations():
        operation = op.ok()
        if operation.path == "/v1/admin/reload":
            continue  # reloading is covered above; fuzzing it only slows the run

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append((case.method, case.path, response.status_code, response.text))

        run()
    assert failures == []
