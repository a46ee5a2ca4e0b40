"""The server's JSON log lines: the shared formatter's fields, request id and extras."""

from __future__ import annotations

import json
import logging
import sys

from churnops.serving.logs import JsonFormatter, request_id_var


def _line(**extra: object) -> dict[str, object]:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "churnops.test", logging.WARNING, __file__, 1, "slow %s", ("db",), sys.exc_info()
        )
    record.__dict__.update(extra)
    return json.loads(JsonFormatter().format(record))


def test_a_line_has_the_fields_then_request_id_and_extras() -> None:
    """time, level, logger, message; the request id being served; ``extra=`` fields."""
    plain = _line()
    assert set(plain) == {"time", "level", "logger", "message", "exception"}
    assert (plain["level"], plain["logger"], plain["message"]) == (
        "warning",
        "churnops.test",
        "slow db",
    )
    assert plain["time"].endswith("+00:00")
    assert "ValueError: boom" in plain["exception"]
    token = request_id_var.set("req-1")
    try:
        served = _line(route="/v1/predict", _private=1)
    finally:
        request_id_var.reset(token)
    assert served["request_id"] == "req-1"
    assert served["route"] == "/v1/predict"
    assert "_private" not in served
