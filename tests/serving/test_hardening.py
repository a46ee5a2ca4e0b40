"""Issue 12 hardening: nesting depth, rate limits before auth, protocol details."""

from __future__ import annotations

import logging
from typing import Any

import pytest


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
            assert "nested" in r.json()["message"]
            assert "32" in r.json()["message"]
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR or rec.exc_info]
