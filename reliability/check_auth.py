"""The auth matrix against a real server: every route of the route table × five callers.

Why: a route that forgets its key dependency is the commonest API hole (OWASP API1/API5).
The table of expected statuses is the pytest's (tests/serving/test_route_auth_matrix.py),
so the suite and `make test` hold the same rows; here the calls go over real HTTP to a
`churnops serve` process, with keys from its real store (a revoked one included).
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from reliability.common import Budget, Home, Result, scratch, serving


def run(home: Home, budget: Budget) -> Result:
    """Every (route, caller) pair answers its expected status."""
    del budget  # the matrix is the same size in both budgets
    from tests.serving.test_route_auth_matrix import EXPECTED, check_matrix, make_caller_keys

    from churnops.serving import create_app

    started = time.monotonic()
    work = scratch("auth")
    settings = home.settings()
    keys = make_caller_keys(settings)
    app = create_app(settings)  # its route table only: never started
    with (
        serving(home, work / "server.log") as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):

        def call(method: str, path: str, headers: dict[str, str], kw: dict[str, Any]) -> int:
            return client.request(method, path, headers=headers, **kw).status_code

        calls, problems = check_matrix(app, call, keys)
    routes = len({path for _, path in EXPECTED})
    return Result(
        "auth matrix",
        f"{calls} calls over {routes} routes × 5 callers; {len(problems)} mismatch(es)",
        "every route has a row; 0 mismatches",
        not problems,
        "; ".join(problems[:10]),
        time.monotonic() - started,
    )
