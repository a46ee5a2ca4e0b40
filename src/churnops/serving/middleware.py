"""One pure-ASGI middleware for what every request needs: id, limits, timing, metrics, audit.

A single hand-written ASGI layer (not several ``BaseHTTPMiddleware`` ones, which add a
task and a stream per request) keeps the per-request overhead to a few microseconds.
It gives each request an id (``X-Request-ID``, echoed), refuses oversized bodies (413,
from ``Content-Length`` before reading, or while streaming a chunked body), enforces the
time budget (504), counts requests by route/status/variant, logs one JSON access line,
and queues the audit row of every ``/v1/`` call.

The time budget is kept by :class:`Deadlines`, one periodic check over the requests in
flight, not by ``asyncio.timeout`` around each: that schedules and cancels a timer per
request (4.3 µs, a tenth of a whole ``/v1/predict`` in process) to enforce a budget of
seconds that almost no request comes near.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from typing import Any

import orjson

from churnops.errors import PayloadTooLargeError
from churnops.serving.audit import AuditWriter
from churnops.serving.logs import request_id_var
from churnops.serving.metrics import Metrics

log = logging.getLogger("churnops.serving.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_NO_AUDIT: dict[str, Any] = {}
# Its own generator, seeded from the OS: seeding ``random`` elsewhere cannot repeat ids.
_getrandbits = random.Random().getrandbits


class ServingMiddleware:
    """Request id, body limit, timeout, metrics, access log and audit for every request."""

    def __init__(
        self,
        app: Any,
        *,
        metrics: Metrics,
        audit: AuditWriter | None,
        max_body: int,
        timeout: float,
        access_log: bool,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.audit = audit
        self.max_body = max_body
        self.timeout = timeout
        self.deadlines = Deadlines(timeout)
        self.access_log = access_log
        self._children: dict[tuple[str, int, str], tuple[Any, Any]] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = None
        length = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                text = value.decode("latin-1")
                request_id = text if _SAFE_ID.match(text) else None
            elif name == b"content-length":
                length = value
        # Not os.urandom: its syscall releases the GIL (a chance for another thread to hold
        # the loop up), and a request id needs to be unique, not unpredictable.
        request_id = request_id or f"{_getrandbits(64):016x}"
        token = request_id_var.set(request_id)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        started_response = False
        rid_header = (b"x-request-id", request_id.encode())

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        max_body = self.max_body
        received = 0

        async def receive_wrapper() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body:
                    raise _too_large(max_body)
            return message

        deadlines = self.deadlines
        task = deadlines.enter()
        try:
            if length is not None and (not length.isdigit() or int(length) > max_body):
                await _send_error(send_wrapper, _too_large(max_body), request_id)
                return
            await self.app(scope, receive_wrapper, send_wrapper)
        except asyncio.CancelledError:
            if not deadlines.expired(task):
                raise  # cancelled by someone else (shutdown, a client gone): not ours
            if not started_response:
                await _send_json(
                    send_wrapper,
                    504,
                    {
                        "error": "Timeout",
                        "message": f"The request took longer than {self.timeout:g}s.",
                        "request_id": request_id,
                    },
                )
        finally:
            deadlines.leave(task)
            self._record(scope, state, status, time.perf_counter() - started, request_id)
            request_id_var.reset(token)

    def _record(
        self, scope: dict[str, Any], state: dict[str, Any], status: int, seconds: float, rid: str
    ) -> None:
        route = scope.get("route")
        path = getattr(route, "path", None) or "other"
        variant = state.get("variant", "")
        key = (path, status, variant)
        children = self._children.get(key)
        if children is None:  # label lookups lock and validate: once per series, not per call
            metrics = self.metrics
            children = self._children[key] = (
                metrics.requests.labels(path, str(status), variant).inc,
                metrics.latency.labels(path).observe,
            )
        children[0]()
        children[1](seconds)
        if self.access_log and log.isEnabledFor(logging.INFO):
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": path,
                    "status": status,
                    "latency_ms": round(seconds * 1000, 3),
                    "key": state.get("key_name"),
                    "variant": variant or None,
                },
            )
        if self.audit is not None and path.startswith("/v1/"):
            at = time.time()
            key_name = state.get("key_name")
            latency_ms = seconds * 1000
            audit = state.get("audit")
            # One tuple per row, in AUDIT_FIELDS order; a batch served by several variants
            # leaves a list of parts (one row each).
            for part in audit if isinstance(audit, list) else (audit or _NO_AUDIT,):
                get = part.get
                self.audit.audit(
                    (
                        at,
                        rid,
                        key_name,
                        path,
                        status,
                        latency_ms,
                        get("customer_ids"),
                        get("n_customers", 0),
                        get("payload_digest"),
                        get("model_version"),
                        get("variant") or variant or None,
                        get("probabilities"),
                    )
                )


class Deadlines:
    """Cancel each request that outlives ``seconds``, from one check every ``every`` seconds.

    A request is cancelled between ``seconds`` and ``seconds + every`` after it started
    (``every`` is a tenth of the budget, at most 0.1 s). The check is a timer that runs
    only while requests are in flight, so an idle server schedules nothing.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.every = min(0.1, seconds / 10)
        self._running: dict[asyncio.Task[Any], float] = {}  # task -> its deadline
        self._expired: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def enter(self) -> asyncio.Task[Any]:
        """Start the budget of the request the current task serves; return the task."""
        task = asyncio.current_task()
        assert task is not None  # ASGI apps run in a task
        self._running[task] = time.monotonic() + self.seconds
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.every, self._check)
        return task

    def expired(self, task: asyncio.Task[Any]) -> bool:
        """Say whether ``task`` was cancelled for its deadline (and take that cancel back)."""
        if task not in self._expired:
            return False
        self._expired.discard(task)
        task.uncancel()
        return True

    def leave(self, task: asyncio.Task[Any]) -> None:
        """End the request's budget (a cancel that came too late to matter is taken back)."""
        del self._running[task]
        self.expired(task)

    def _check(self) -> None:
        now = time.monotonic()
        for task, deadline in self._running.items():
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        self._timer = (
            asyncio.get_running_loop().call_later(self.every, self._check)
            if self._running
            else None
        )


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"Request body exceeds the limit of {limit} bytes.", {"limit_bytes": limit}
    )


async def _send_error(send: Any, exc: PayloadTooLargeError, request_id: str) -> None:
    await _send_json(send, exc.http_status, {**exc.to_dict(), "request_id": request_id})


async def _send_json(send: Any, status: int, payload: dict[str, Any]) -> None:
    body = orjson.dumps(payload)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
