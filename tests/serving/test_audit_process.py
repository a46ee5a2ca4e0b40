"""The audit writer runs as a separate process: rows arrive, shutdown flushes, death is survived."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from churnops.serving.audit import AuditWriter
from tests.conftest import POSTGRES_URL, require_service
from tests.factories import loyal_customer, obvious_churner


def _rows(api: Any, sql: str) -> list[Any]:
    from churnops.store import get_engine

    with get_engine(api.settings).connect() as conn:
        return conn.execute(sa.text(sql)).all()


def _writer(api: Any) -> AuditWriter:
    writer = api.client.app.state.services.audit
    assert writer is not None
    return writer


def _wait(predicate: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_rows_are_written_by_a_separate_process_and_flushed_at_shutdown(make_api: Any) -> None:
    """Audit and prediction-log rows come from the writer process; lifespan end drains it."""
    api = make_api(serve_log_sample=1.0)
    writer = _writer(api)
    assert writer.pid is not None
    assert writer.pid != os.getpid()
    for _ in range(5):
        assert api.post("/v1/predict", obvious_churner()).status_code == 200
    api.post("/v1/predict/batch", {"customers": [obvious_churner(), loyal_customer()]})
    # Shut down right away: the rows are still buffered in the server or in the pipe.
    api.client.__exit__(None, None, None)
    assert writer.pid is None  # the process was stopped
    audits = _rows(api, "select route, status, model_version, variant from audit_log")
    assert audits.count(("/v1/predict", 200, "1", "champion")) == 5
    assert ("/v1/predict/batch", 200, "1", "champion") in audits
    logged = _rows(api, "select customer_id, variant, churn, features from prediction_log")
    assert len(logged) == 7
    assert logged[0][:3] == ("RISKY", "champion", True)
    assert '"customer_id":"RISKY"' in logged[0].features
    assert writer.written == {"audit": 6, "prediction": 7}
    assert writer.dropped == 0


def test_a_dead_writer_fails_no_request_and_is_restarted(make_api: Any) -> None:
    """Kill the writer: requests still answer 200, drops are counted, a new writer takes over."""
    api = make_api()
    writer = _writer(api)
    first = writer.pid
    assert first is not None
    os.kill(first, 9)
    for _ in range(20):
        assert api.post("/v1/predict", obvious_churner()).status_code == 200
        time.sleep(0.02)
    _wait(lambda: writer.pid not in (None, first) and writer.restarts >= 1)
    marker = f"after-{uuid.uuid4().hex[:8]}"
    r = api.post("/v1/predict", obvious_churner(), headers={"X-Request-ID": marker})
    assert r.status_code == 200
    api.client.__exit__(None, None, None)
    ids = [row[0] for row in _rows(api, "select request_id from audit_log")]
    assert marker in ids  # the restarted writer stored rows
    # Every request is either stored or counted as dropped, none fails.
    assert len(ids) + writer.dropped == 21


def test_store_errors_are_counted_not_raised(serving_settings: Any, tmp_path: Any) -> None:
    """A store the writer cannot open: its rows are reported dropped; nothing raises."""
    import asyncio

    (tmp_path / "a-file").write_text("")
    settings = serving_settings.model_copy(
        update={"database_url": f"sqlite:///{tmp_path / 'a-file' / 'ops.db'}"}
    )
    counted: list[int] = []
    writer = AuditWriter(settings, on_drop=counted.append, flush_seconds=0.05)

    async def scenario() -> None:
        await writer.start()
        for i in range(3):
            writer.audit(
                (
                    time.time(),
                    f"r{i}",
                    "k",
                    "/v1/predict",
                    200,
                    1.0,
                    None,
                    0,
                    None,
                    None,
                    None,
                    None,
                )
            )
        await asyncio.sleep(0.2)
        await writer.stop()

    asyncio.run(scenario())
    assert writer.dropped == 3
    assert sum(counted) == 3
    assert writer.written == {"audit": 0, "prediction": 0}


@pytest.mark.parametrize("url", [POSTGRES_URL])
def test_writer_process_on_postgres(make_api: Any, url: str) -> None:
    """Same rows through PostgreSQL (multi-row INSERT with %s markers)."""
    require_service(url, "PostgreSQL")
    api = make_api(database_url=url)
    marker = f"pg-{uuid.uuid4().hex[:12]}"
    r = api.post("/v1/predict", obvious_churner(), headers={"X-Request-ID": marker})
    assert r.status_code == 200
    api.client.__exit__(None, None, None)
    sql = f"select route, status, customer_ids from audit_log where request_id = '{marker}'"
    rows = _rows(api, sql)
    assert rows == [("/v1/predict", 200, '["RISKY"]')]


def test_explain_is_read_by_hand_but_documented_and_validated(api: Any) -> None:
    """``?explain`` (no FastAPI parameter on the hot path): same values, 422 and docs."""
    assert "reasons" in api.post("/v1/predict?explain=YES", obvious_churner()).json()
    assert "reasons" not in api.post("/v1/predict?explain=0", obvious_churner()).json()
    assert "reasons" not in api.post("/v1/predict?other=1", obvious_churner()).json()
    batch = api.post("/v1/predict/batch?explain=true", {"customers": [loyal_customer()]})
    assert "reasons" in batch.json()["predictions"][0]
    bad = api.post("/v1/predict?explain=maybe", obvious_churner())
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "explain"
    assert bad.json()["errors"][0]["sent"] == "maybe"
    spec = api.client.get("/openapi.json").json()
    for path in ("/v1/predict", "/v1/predict/batch"):
        params = spec["paths"][path]["post"]["parameters"]
        assert {"name": "explain", "in": "query"}.items() <= params[0].items()
        assert params[0]["schema"]["type"] == "boolean"
