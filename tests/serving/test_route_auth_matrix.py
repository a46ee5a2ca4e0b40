"""Who may call what: one row per route of the app's route table, five callers per row.

The routes are read from ``app.routes`` (walking included routers and mounts), not from
a list kept by hand, so a route added without a row here fails this test: every new
route must say which key it needs. HEAD follows its GET row (HTTP: same semantics, no
body). `make reliability` runs the same table against a real server
(reliability/check_auth.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from churnops.serving.auth import create_key, revoke_key
from tests.factories import obvious_churner

pytestmark = pytest.mark.integration

CALLERS = ("none", "bad", "revoked", "scorer", "analyst", "admin")
# Expected status per caller. A 2xx here means "let through"; the body sent is valid.
PUBLIC = dict.fromkeys(CALLERS, 200)
DENIED = {"none": 401, "bad": 401, "revoked": 401}
SCORER = {**DENIED, "scorer": 200, "analyst": 403, "admin": 200}
READER = {**DENIED, "scorer": 200, "analyst": 200, "admin": 200}
ADMIN = {**DENIED, "scorer": 403, "analyst": 403, "admin": 200}
# The test stores hold no scores: a report answers 404 to a caller it lets through.
ANALYST = {**DENIED, "scorer": 403, "analyst": 404, "admin": 404}

# (method, path) -> expected statuses. "MOUNT" rows name mounted sub-apps (static files).
EXPECTED: dict[tuple[str, str], dict[str, int]] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("MOUNT", "/static-offline-docs"): PUBLIC,  # Swagger UI / ReDoc assets (fastapi-offline)
    ("POST", "/v1/predict"): SCORER,
    ("POST", "/v1/predict/batch"): SCORER,
    ("GET", "/v1/model"): READER,
    ("POST", "/v1/admin/reload"): ADMIN,
    ("GET", "/v1/reports/high-risk"): ANALYST,
}


def route_table(app: Any) -> list[tuple[str, str]]:
    """Every (method, path) the app answers, from its route table (included routers too)."""
    found: set[tuple[str, str]] = set()

    def walk(routes: Any, prefix: str = "") -> None:
        for route in routes:
            contexts = getattr(route, "effective_route_contexts", None)
            if contexts is not None:  # FastAPI's included router
                for ctx in contexts():
                    original = ctx.original_route
                    path = ctx.path or getattr(original, "path", "")
                    add(original, prefix + path)
                continue
            add(route, prefix + getattr(route, "path", ""))

    def add(route: Any, path: str) -> None:
        methods = getattr(route, "methods", None)
        if methods:
            found.update((m, path) for m in methods)
        elif hasattr(route, "routes") or hasattr(route, "app"):  # a Mount
            found.add(("MOUNT", path))

    walk(app.routes)
    return sorted(found)


def expected_for(method: str, path: str) -> dict[str, int] | None:
    """The row for a route; HEAD takes its GET row."""
    row = EXPECTED.get((method, path))
    if row is None and method == "HEAD":
        row = EXPECTED.get(("GET", path))
    return row


def request_for(method: str, path: str) -> dict[str, Any]:
    """A valid request for a route, so only the key decides the status."""
    if path == "/v1/predict":
        return {"json": obvious_churner()}
    if path == "/v1/predict/batch":
        return {"json": {"customers": [obvious_churner()]}}
    return {}


def caller_headers(keys: dict[str, str], caller: str) -> dict[str, str]:
    """The Authorization header a caller sends (none for 'none')."""
    if caller == "none":
        return {}
    return {"Authorization": f"Bearer {keys[caller]}"}


def make_caller_keys(settings: Any, create: Callable[..., Any] = create_key) -> dict[str, str]:
    """Scorer, analyst, admin, a revoked scorer and a well-formed key nobody created."""
    tag = uuid.uuid4().hex[:8]
    keys = {
        "scorer": create(settings, f"matrix-scorer-{tag}", "scorer")["key"],
        "analyst": create(settings, f"matrix-analyst-{tag}", "analyst")["key"],
        "admin": create(settings, f"matrix-admin-{tag}", "admin")["key"],
        "revoked": create(settings, f"matrix-revoked-{tag}", "scorer")["key"],
        "bad": "chk_" + uuid.uuid4().hex + uuid.uuid4().hex[:11],
    }
    revoke_key(settings, f"matrix-revoked-{tag}")
    return keys


def check_matrix(
    app: Any, call: Callable[[str, str, dict[str, str], dict[str, Any]], int], keys: dict
) -> tuple[int, list[str]]:
    """Call every route as every caller; return (calls made, mismatches and missing rows)."""
    problems: list[str] = []
    calls = 0
    routes = route_table(app)
    known = {path for _, path in routes}
    for method, path in routes:
        row = expected_for(method, path)
        if row is None:
            problems.append(f"{method} {path}: no row in the auth matrix (add one)")
            continue
        if method == "MOUNT":
            continue  # static assets: the row records that they are public on purpose
        for caller in CALLERS:
            status = call(method, path, caller_headers(keys, caller), request_for(method, path))
            calls += 1
            if status != row[caller]:
                problems.append(f"{method} {path} as {caller}: {status}, expected {row[caller]}")
    for method, path in EXPECTED:
        if path not in known:
            problems.append(f"{method} {path}: row for a route the app does not have")
    return calls, problems


@pytest.fixture
def matrix_api(make_api: Callable[..., Any]) -> Any:
    """An app with the session champion, rate limit off (the matrix sends many calls)."""
    return make_api(serve_rate_limit=0.0)


def test_every_route_has_a_row_and_each_caller_gets_its_status(matrix_api: Any) -> None:
    """No key/bad/revoked → 401 on keyed routes; a role a route does not take → 403."""
    keys = make_caller_keys(matrix_api.settings)
    client = matrix_api.client

    def call(method: str, path: str, headers: dict[str, str], kw: dict[str, Any]) -> int:
        return int(client.request(method, path, headers=headers, **kw).status_code)

    calls, problems = check_matrix(client.app, call, keys)
    assert problems == []
    assert calls >= 5 * len(EXPECTED)


def test_a_route_without_a_row_fails_the_matrix(matrix_api: Any) -> None:
    """The guard itself: a new route the table does not know is reported."""
    app = matrix_api.client.app

    @app.get("/v1/brand-new")
    async def brand_new() -> dict[str, str]:
        return {}

    missing = [r for r in route_table(app) if expected_for(*r) is None]
    assert ("GET", "/v1/brand-new") in missing
