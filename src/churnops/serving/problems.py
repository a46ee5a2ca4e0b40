"""Every error the API answers, as one JSON shape: the error tree mapped to HTTP once.

FastAPI's exception handlers (``serving/app.py``) and the scoring routes' own ASGI path
(``serving/fast.py``, which runs ahead of FastAPI's router) both answer through
:func:`problem_response`, so a refusal reads the same whichever path served it: ``error``,
``message`` (no URL passwords, absolute paths or file URIs), the details, ``request_id``.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from churnops.errors import ChurnopsError, ServingError
from churnops.redact import redact

# Absolute paths and file/sqlite URIs never leave the server (they name its internals).
_PATHS = re.compile(
    r"(?:[A-Za-z][A-Za-z0-9+.-]*:)?/{1,4}(?:[^\s'\",;:()\[\]{}]+/)+[^\s'\",;:()\[\]{}]*"
)


def public(message: str) -> str:
    """Return ``message`` without URL passwords, absolute paths or file URIs."""
    return _PATHS.sub("<path>", redact(message))


def error_response(
    scope: dict[str, Any], status: int, payload: dict[str, Any], headers: Any = None
) -> JSONResponse:
    """Return the JSON error answer: every text field made public, the request id added."""
    payload["message"] = str(payload.get("message", ""))
    for key, value in payload.items():  # message, reason, …: strip paths from every text
        if isinstance(value, str):
            payload[key] = public(value)
    payload["request_id"] = scope.get("state", {}).get("request_id")
    return JSONResponse(payload, status_code=status, headers=headers)


def problem_response(scope: dict[str, Any], exc: Exception) -> JSONResponse:
    """Return the answer to ``exc``: its own status for known errors, else an opaque 500."""
    if isinstance(exc, ChurnopsError):
        headers = exc.headers if isinstance(exc, ServingError) else None
        return error_response(scope, exc.http_status, exc.to_dict(), headers)
    if isinstance(exc, RequestValidationError):
        return error_response(scope, 422, _validation_payload(exc))
    if isinstance(exc, StarletteHTTPException):
        return error_response(
            scope,
            exc.status_code,
            {"error": "HTTPError", "message": str(exc.detail)},
            getattr(exc, "headers", None),
        )
    return error_response(
        scope,
        500,
        {
            "error": "InternalError",
            "message": "Internal error; the server log has the details under this request id.",
        },
    )


def _validation_payload(exc: RequestValidationError) -> dict[str, Any]:
    """FastAPI's validation errors as ours: which field, what it says, what was sent."""
    problems = [
        {
            "field": ".".join(str(p) for p in e.get("loc", ())[1:]) or None,
            "message": str(e.get("msg", "invalid")),
            "sent": e.get("input") if isinstance(e.get("input"), str | int | float) else None,
        }
        for e in exc.errors()
    ]
    first = problems[0] if problems else {"field": None, "message": "invalid request"}
    return {
        "error": "RequestValidationError",
        "message": f"{first['field'] or 'request'}: {first['message']}",
        "errors": problems,
    }
