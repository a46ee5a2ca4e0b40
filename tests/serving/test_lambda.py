"""The AWS Lambda entry point, in process, with API Gateway HTTP API (payload 2.0) events.

The events are shaped as API Gateway sends them (``version`` 2.0, ``routeKey``,
``rawPath``, lower-case ``headers``, the body as a string, ``requestContext.http``), and
the handler is the real one: Mangum over ``create_app``, the model from the registry or
baked into a folder, the keys in a real SQLite store.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from churnops.config import Settings
from churnops.errors import ConfigError, ModelNotFoundError
from churnops.serving.auth import create_key, revoke_key
from tests.factories import loyal_customer, obvious_churner

mangum = pytest.importorskip("mangum", reason="the lambda extra (mangum) is not installed")

from churnops.serving import aws_lambda  # noqa: E402 - after the extra's check
from churnops.serving.aws_lambda import LambdaContext, LambdaHandler  # noqa: E402


def http_api_event(
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: str = "",
    base64_body: bool = False,
) -> dict[str, Any]:
    """Return an API Gateway HTTP API (v2) proxy event as the service sends it."""
    text = body if isinstance(body, str) or body is None else json.dumps(body)
    if text is not None and base64_body:
        text = base64.b64encode(text.encode()).decode()
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {
            "accept": "application/json",
            "content-length": str(len(text or "")),
            "content-type": "application/json",
            "host": "abc123.execute-api.eu-west-1.amazonaws.com",
            "user-agent": "pytest",
            "x-amzn-trace-id": "Root=1-6561f4a0-0123456789abcdef01234567",
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
            **(headers or {}),
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "pytest",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": base64_body,
    }
    if query:
        event["queryStringParameters"] = dict(p.split("=", 1) for p in query.split("&"))
    if text is not None:
        event["body"] = text
    return event


def _json(response: dict[str, Any]) -> Any:
    body = response["body"]
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return json.loads(body)


def _headers(response: dict[str, Any]) -> dict[str, str]:
    return {k.lower(): v for k, v in response["headers"].items()}


@pytest.fixture
def lambda_settings(serving_settings: Settings) -> Settings:
    """The serving test settings, as a function would have them (no audit, a key cache)."""
    return serving_settings.model_copy(update={"serve_key_cache_seconds": 5.0})


@pytest.fixture
def make_handler(lambda_settings: Settings) -> Iterator[Callable[..., LambdaHandler]]:
    """Build handlers (each one a cold start) and run their shutdown afterwards."""
    built: list[LambdaHandler] = []

    def build(settings: Settings | None = None, model_dir: Path | None = None) -> LambdaHandler:
        handler = aws_lambda.build_handler(settings or lambda_settings, model_dir=model_dir)
        built.append(handler)
        return handler

    yield build
    for handler in built:
        handler.close()


@pytest.fixture
def scorer_key(lambda_settings: Settings) -> str:
    return create_key(lambda_settings, f"lambda-scorer-{time.time_ns()}", "scorer")["key"]


def test_no_key_is_401_with_a_challenge(make_handler: Callable[..., LambdaHandler]) -> None:
    handler = make_handler()
    response = handler(http_api_event("POST", "/v1/predict", obvious_churner()), LambdaContext())
    assert response["statusCode"] == 401
    assert _json(response)["error"] == "AuthenticationError"
    assert _headers(response)["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("scheme", ["authorization", "x-api-key"])
def test_a_valid_key_and_record_get_a_prediction(
    make_handler: Callable[..., LambdaHandler], scorer_key: str, scheme: str
) -> None:
    """Both ways of sending a key work through API Gateway's lower-cased headers."""
    handler = make_handler()
    header = {"authorization": f"Bearer {scorer_key}"} if scheme == "authorization" else {}
    header = header or {"x-api-key": scorer_key}
    context = LambdaContext(aws_request_id="5b8a1c2e-1111-2222-3333-444455556666")
    risky = handler(http_api_event("POST", "/v1/predict", obvious_churner(), header), context)
    assert risky["statusCode"] == 200, risky["body"]
    assert risky["isBase64Encoded"] is False
    body = _json(risky)
    assert body["customer_id"] == "RISKY"
    assert body["churn"] is True
    assert body["model"]["version"] == "1"
    # The churnops request id is the invocation's, to match Lambda's CloudWatch lines.
    assert _headers(risky)["x-request-id"] == context.aws_request_id
    loyal = handler(http_api_event("POST", "/v1/predict", loyal_customer(), header), context)
    assert _json(loyal)["probability"] < body["probability"]


def test_explain_query_batch_and_base64_bodies(
    make_handler: Callable[..., LambdaHandler], scorer_key: str
) -> None:
    """The query string reaches the app; API Gateway's base64 bodies are decoded."""
    handler = make_handler()
    key = {"x-api-key": scorer_key}
    explained = handler(
        http_api_event("POST", "/v1/predict", obvious_churner(), key, query="explain=true"),
        LambdaContext(),
    )
    assert explained["statusCode"] == 200, explained["body"]
    assert len(_json(explained)["reasons"]) == 3
    batch = {"customers": [obvious_churner(), loyal_customer()]}
    scored = handler(
        http_api_event("POST", "/v1/predict/batch", batch, key, base64_body=True),
        LambdaContext(),
    )
    assert scored["statusCode"] == 200, scored["body"]
    assert [p["customer_id"] for p in _json(scored)["predictions"]] == ["RISKY", "LOYAL"]


def test_a_bad_record_is_422_naming_the_field(
    make_handler: Callable[..., LambdaHandler], scorer_key: str
) -> None:
    handler = make_handler()
    record = {**obvious_churner(), "contract": "Weekly"}
    response = handler(
        http_api_event("POST", "/v1/predict", record, {"x-api-key": scorer_key}), LambdaContext()
    )
    assert response["statusCode"] == 422, response["body"]
    body = _json(response)
    assert "contract" in [problem["field"] for problem in body["errors"]]
    assert "Weekly" in body["message"]
    not_json = handler(
        http_api_event("POST", "/v1/predict", "{not json", {"x-api-key": scorer_key}),
        LambdaContext(),
    )
    assert not_json["statusCode"] == 422


def test_probes_answer_and_the_model_source_is_reported(
    make_handler: Callable[..., LambdaHandler],
) -> None:
    handler = make_handler()
    assert handler(http_api_event("GET", "/healthz"), LambdaContext())["statusCode"] == 200
    ready = handler(http_api_event("GET", "/readyz"), LambdaContext())
    assert ready["statusCode"] == 200
    assert _json(ready)["source"] == "registry"


def test_a_key_revoked_while_the_sandbox_was_frozen_is_refused_at_once(
    make_handler: Callable[..., LambdaHandler], lambda_settings: Settings
) -> None:
    """No background refresh runs between invocations: the handler re-reads stale keys first.

    The server's cache would answer the first request after the cache period with the old
    keys (refreshing in the background); in a sandbox that was frozen for hours that is a
    revoked key accepted once more.
    """
    settings = lambda_settings.model_copy(update={"serve_key_cache_seconds": 0.3})
    name = f"lambda-revoked-{time.time_ns()}"
    key = create_key(settings, name, "scorer")["key"]
    handler = make_handler(settings)
    event = http_api_event("POST", "/v1/predict", obvious_churner(), {"x-api-key": key})
    assert handler(event, LambdaContext())["statusCode"] == 200
    revoke_key(settings, name)
    time.sleep(0.4)  # the sandbox "frozen" past the cache period
    assert handler(event, LambdaContext())["statusCode"] == 401


def test_the_lifespan_runs_once_per_sandbox(
    make_handler: Callable[..., LambdaHandler], scorer_key: str
) -> None:
    """Keys are read at the cold start and not per invocation; the audit writer is off."""
    handler = make_handler()
    services = handler.app.state.services
    assert services.audit is None
    reads = 0
    refresh = services.keys.refresh

    def counting_refresh() -> None:
        nonlocal reads
        reads += 1
        refresh()

    services.keys.refresh = counting_refresh
    event = http_api_event("POST", "/v1/predict", obvious_churner(), {"x-api-key": scorer_key})
    statuses = [handler(event, LambdaContext())["statusCode"] for _ in range(5)]
    assert statuses == [200] * 5
    assert reads == 0  # Mangum's own lifespan would re-read every key on each event


def test_a_baked_model_serves_without_the_registry(
    make_handler: Callable[..., LambdaHandler],
    lambda_settings: Settings,
    scorer_key: str,
    tmp_path: Path,
) -> None:
    """Baked into the image: same scores as the registry's champion, registry never read."""
    baked = tmp_path / "image" / "model"
    result = aws_lambda.bake(lambda_settings, baked)
    assert result["version"] == "1"
    assert aws_lambda.is_baked(lambda_settings, baked)
    offline = lambda_settings.model_copy(
        update={"tracking_uri": f"sqlite:///{tmp_path / 'no-such-dir' / 'mlflow.db'}"}
    )
    handler = make_handler(offline, model_dir=baked)
    ready = _json(handler(http_api_event("GET", "/readyz"), LambdaContext()))
    assert ready["source"] == "baked"
    assert ready["model"]["version"] == "1"
    event = http_api_event("POST", "/v1/predict", obvious_churner(), {"x-api-key": scorer_key})
    from_image = _json(handler(event, LambdaContext()))
    from_registry = _json(make_handler()(event, LambdaContext()))
    assert from_image["probability"] == from_registry["probability"]
    assert not (tmp_path / "no-such-dir").exists()


def test_a_tampered_baked_model_is_refused_at_cold_start(
    lambda_settings: Settings, tmp_path: Path
) -> None:
    """The copy is verified against its manifest at every cold start, like a registry load."""
    from churnops.errors import ModelIntegrityError

    baked = tmp_path / "model"
    folder = Path(aws_lambda.bake(lambda_settings, baked)["folder"])
    victim = next(p for p in sorted((folder / "scoring").rglob("*")) if p.is_file())
    victim.write_bytes(victim.read_bytes() + b" ")
    with pytest.raises(ModelIntegrityError):
        aws_lambda.build_handler(lambda_settings, model_dir=baked)


def test_lambda_defaults_and_refusals(
    lambda_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Home on /tmp and audit off unless set; audit or polling asked for is a ConfigError."""
    monkeypatch.delenv("CHURNOPS_HOME")
    applied = aws_lambda.lambda_settings(Settings())
    assert applied.home == Path("/tmp/churnops")
    assert applied.serve_audit is False
    kept = aws_lambda.lambda_settings(lambda_settings)
    assert kept.home == lambda_settings.home
    with pytest.raises(ConfigError, match="audit writer process"):
        aws_lambda.lambda_settings(Settings(serve_audit=True))
    with pytest.raises(ConfigError, match="POLL_SECONDS"):
        aws_lambda.lambda_settings(Settings(serve_poll_seconds=30))


def test_bake_without_a_champion_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m churnops.serving.aws_lambda bake` before a model exists: exit 3, a message."""
    with pytest.raises(ModelNotFoundError):
        aws_lambda.bake(Settings(home=tmp_path / "empty"), tmp_path / "model")
    assert aws_lambda.main(["bake", str(tmp_path / "model")]) == 3  # CHURNOPS_HOME is empty
    assert capsys.readouterr().err.startswith("error: No alias 'champion'")
    assert not aws_lambda.is_baked(Settings(), tmp_path / "model")


def test_the_module_handler_is_built_once_in_a_fresh_process(
    lambda_settings: Settings, scorer_key: str, tmp_path: Path
) -> None:
    """As the runtime does it: import, take ``handler`` (the cold start), serve events.

    The environment is a function's: settings from CHURNOPS_* variables (the database URL
    from a secret file), a baked model under $LAMBDA_TASK_ROOT/model.
    """
    task_root = tmp_path / "var-task"
    aws_lambda.bake(lambda_settings, task_root / "model")
    db_url_file = tmp_path / "db_url"
    db_url_file.write_text(lambda_settings.resolved_database_url + "\n")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CHURNOPS_", "MLFLOW_"))},
        "LAMBDA_TASK_ROOT": str(task_root),
        "CHURNOPS_DATABASE_URL_FILE": str(db_url_file),
        "CHURNOPS_TRACKING_URI": f"sqlite:///{tmp_path / 'absent' / 'mlflow.db'}",
        "CHURNOPS_HOME": str(tmp_path / "tmp-churnops"),
    }
    events = [
        http_api_event("GET", "/readyz"),
        http_api_event("POST", "/v1/predict", obvious_churner(), {"x-api-key": scorer_key}),
        http_api_event("POST", "/v1/predict", obvious_churner()),
    ]
    script = (
        "import json, sys\n"
        "import churnops.serving.aws_lambda as m\n"
        "from churnops.serving.aws_lambda import LambdaContext\n"
        "events = json.loads(sys.stdin.read())\n"
        "out = [m.handler(e, LambdaContext()) for e in events]\n"
        "assert m.handler is m.handler\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(events),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    ready, scored, refused = json.loads(done.stdout)
    assert _json(ready)["source"] == "baked"
    assert scored["statusCode"] == 200, scored["body"]
    assert refused["statusCode"] == 401
    log_lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert any(line["message"] == "lambda handler ready" for line in log_lines)
    assert not (tmp_path / "absent").exists()  # baked: the registry was never opened


def test_the_image_runs_this_handler_with_a_writable_numba_cache() -> None:
    """deploy/lambda/Dockerfile: its CMD is this module's handler, numba caches under /tmp.

    Docker cannot build here, so the file is read: the handler string must name a module
    that provides ``handler``, and numba (imported by the scoring kernels) must cache in
    the sandbox's only writable place, or the import fails at cold start.
    """
    dockerfile = (
        Path(__file__).resolve().parents[2] / "deploy" / "lambda" / "Dockerfile"
    ).read_text()
    final = dockerfile.split("\nFROM ")[-1]  # the runtime stage
    assert final.startswith("public.ecr.aws/lambda/python:3.11")
    cmd = json.loads(next(line for line in final.splitlines() if line.startswith("CMD "))[4:])
    module, _, attribute = cmd[0].rpartition(".")
    assert module == aws_lambda.__name__
    assert attribute == "handler"
    cache = next(line for line in final.splitlines() if line.startswith("ENV NUMBA_CACHE_DIR="))
    assert cache.split("=", 1)[1].startswith("/tmp/")
