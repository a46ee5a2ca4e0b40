"""The scoring routes' own ASGI path, ahead of FastAPI's router.

Why by hand: profiled under load (py-spy, one worker, 16 connections), a FastAPI route
cost ~200 µs of CPU per ``/v1/predict`` around ~20 µs of scoring — the router's walk over
every route, the exception middleware, ``solve_dependencies`` for the key check, the
request object and its body stream. ``POST /v1/predict`` and ``/v1/predict/batch`` are
therefore answered here, inside :class:`~churnops.serving.middleware.ServingMiddleware`
(request id, body limit, timeout, metrics, access log and audit still apply) and inside
Starlette's server-error middleware (an unexpected exception still becomes the JSON 500):
one read of the body, the key check and limiters as plain calls
(:func:`~churnops.serving.deps.authenticate`), the same work functions as the FastAPI
routes (``routes/predict.py``, which stay declared so ``/docs`` and the OpenAPI spec
describe them), and the answer sent as two ASGI messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.exceptions import RequestValidationError

from churnops.errors import ChurnopsError
from churnops.serving.deps import Services, authenticate, require_role
from churnops.serving.problems import problem_response
from churnops.serving.routes.predict import explain_flag, score_batch, score_one

Work = Callable[[Services, dict[str, Any], bytes, bool], Awaitable[bytes]]
SCORER = ("scorer",)
_JSON = (b"content-type", b"application/json")


async def _one(services: Services, scope: dict[str, Any], body: bytes, explain: bool) -> bytes:
    return score_one(services, scope, body, explain)


SCORING_PATHS: dict[str, Work] = {"/v1/predict": _one, "/v1/predict/batch": score_batch}


class ScoringRoutes:
    """Answer ``POST /v1/predict`` and ``POST /v1/predict/batch``; pass everything else on."""

    def __init__(self, app: Any, *, services: Services, routes: dict[str, Any]) -> None:
        """Wrap ``app``; ``routes`` maps each path to its declared FastAPI route.

        The declared route goes into the scope (``scope["route"]``) as the router would
        put it, so metrics and the access log label the request by its route.
        """
        self.app = app
        self.services = services
        self.paths = {path: (routes[path], work) for path, work in SCORING_PATHS.items()}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            found = self.paths.get(scope["path"])
            if found is not None:
                scope["route"] = found[0]
                await self._answer(scope, receive, send, found[1])
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: dict[str, Any], receive: Any, send: Any, work: Work) -> None:
        """Authenticate, read the body once, do the route's work, send the answer."""
        services = self.services
        try:
            require_role(await authenticate(services, scope), SCORER)
            explain = explain_flag(scope["query_string"])
            body = await _body(receive)
            if body is None:  # the client went away: nobody to answer
                return
            answer = await work(services, scope, body, explain)
        except (ChurnopsError, RequestValidationError) as exc:
            await problem_response(scope, exc)(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [_JSON, (b"content-length", b"%d" % len(answer))],
            }
        )
        await send({"type": "http.response.body", "body": answer})


async def _body(receive: Any) -> bytes | None:
    """Return the whole request body, or None when the client disconnected first."""
    message = await receive()
    if message["type"] != "http.request":
        return None
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body  # the usual case: one message, no copy
    chunks = [body]
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
