"""Typed dependencies of the routes: who is calling (``ApiKeyDep``) and what serves.

``ApiKeyDep`` takes a token from the client address's rate-limit bucket, authenticates
(``Authorization: Bearer KEY`` or ``X-API-Key: KEY``), then takes a token from the key's
bucket: the address comes first so that requests with made-up keys are limited too.
``AdminKeyDep`` also requires the admin role. ``PredictorDep`` is the champion predictor,
or a 503 while none is loaded.

Routes that need a key are found from these dependencies (``needs_key``), and the OpenAPI
spec declares the two ways to send one as security schemes on exactly those routes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant

from churnops.config import Settings
from churnops.errors import (
    AuthenticationError,
    ModelNotReadyError,
    PermissionDeniedError,
    ServiceUnavailableError,
)
from churnops.scoring import Predictor
from churnops.serving.audit import AuditWriter
from churnops.serving.auth import ANONYMOUS, KeyCache, Principal
from churnops.serving.metrics import Metrics
from churnops.serving.ratelimit import RateLimits
from churnops.serving.state import ModelState

T = TypeVar("T")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="churnops"'}


@dataclass
class Services:
    """Everything the routes share, built once per app (``app.state.services``)."""

    settings: Settings
    models: ModelState
    metrics: Metrics
    audit: AuditWriter | None
    keys: KeyCache | None  # None = --insecure-no-auth
    limits: RateLimits
    scoring: ScoringPool
    draining: bool = False  # SIGTERM received: /readyz answers 503 until the server stops


class ScoringPool:
    """A few threads for CPU-bound scoring, a bounded queue for them, 503 beyond it.

    A timeout cannot stop CPU-bound work, so it is bounded instead: a thread's slot is
    released when its work ends, not when the request gives up, so requests that timed
    out (504) still hold their slots while their scoring runs. Requests wait for a slot on
    the event loop (a timeout ends the wait and frees its place in the queue).
    """

    def __init__(self, size: int, queue: int, rejected: Callable[[], None]) -> None:
        self.size = size
        self.queue = queue
        self._slots = asyncio.Semaphore(size)
        self._waiting = 0
        self._pool = ThreadPoolExecutor(size, thread_name_prefix="churnops-scoring")
        self._rejected = rejected

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """Run ``work(*args)`` in a scoring thread, or raise 503 when the queue is full."""
        if self._slots.locked() and self._waiting >= self.queue:
            self._rejected()
            raise ServiceUnavailableError(
                f"All {self.size} scoring threads are busy and {self._waiting} batch "
                "requests are waiting; retry shortly.",
                {"retry_after": 1},
                headers={"Retry-After": "1"},
            )
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        loop = asyncio.get_running_loop()
        future = self._pool.submit(work, *args)
        future.add_done_callback(lambda _: _call_soon(loop, self._slots.release))
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Stop the threads once their work is done (none waits: shutdown is underway)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    """Hand ``callback`` to ``loop`` from a scoring thread (a closed loop needs nothing)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback)


def get_services(request: Request) -> Services:
    """Return the app's shared services."""
    return request.app.state.services  # type: ignore[no-any-return]


async def api_key(request: Request) -> Principal:
    """Charge the address's bucket, authenticate the caller, then charge the key's bucket."""
    return await authenticate(request.app.state.services, request.scope)


async def authenticate(services: Services, scope: dict[str, Any]) -> Principal:
    """:func:`api_key` on the raw ASGI scope (the scoring routes' own path calls it too)."""
    client = scope.get("client")
    address = client[0] if client else "-"
    limits = services.limits
    if limits.address is not None:
        await limits.address.take(address)
    if services.keys is None:
        principal = ANONYMOUS
        bucket = f"anonymous:{address}"
    else:
        key = presented_key(scope["headers"])
        if not key:
            raise AuthenticationError(
                "Missing API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'.",
                headers=_CHALLENGE,
            )
        found = await services.keys.lookup(key)
        if found is None:
            raise AuthenticationError("Invalid or revoked API key.", headers=_CHALLENGE)
        principal = found
        bucket = principal.name
    scope["state"]["key_name"] = principal.name
    if limits.key is not None:
        await limits.key.take(bucket)
    return principal


def presented_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """Return the key of ``Authorization: Bearer KEY``, else of ``X-API-Key``, else None.

    Read from the raw header pairs (the first of each name, as Starlette's ``Headers.get``).
    """
    bearer = api_key_header = None
    for name, value in headers:
        if name == b"authorization" and bearer is None:
            bearer = value
        elif name == b"x-api-key" and api_key_header is None:
            api_key_header = value
    if bearer:
        scheme, _, key = bearer.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and key.strip():
            return key.strip()
    return api_key_header.decode("latin-1") if api_key_header else None


def require_role(principal: Principal, roles: tuple[str, ...]) -> Principal:
    """Return ``principal`` when it may act as one of ``roles`` (admin may), else 403."""
    if not principal.allows(*roles):
        needed = " or ".join(repr(r) for r in roles)
        raise PermissionDeniedError(
            f"Key {principal.name!r} has role {principal.role!r}; this route needs {needed}."
        )
    return principal


def role_key(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """Return a dependency that authenticates, then requires one of ``roles`` (or admin)."""

    async def check(principal: Annotated[Principal, Depends(api_key)]) -> Principal:
        return require_role(principal, roles)

    return check


def champion(request: Request) -> Predictor:
    """Return the serving champion or raise 503 while none is loaded."""
    models: ModelState = request.app.state.services.models
    predictor = models.champion
    if predictor is None:
        raise ModelNotReadyError(
            f"No model loaded yet: {models.not_ready_reason}.", headers={"Retry-After": "5"}
        )
    return predictor


def needs_key(dependant: Dependant) -> bool:
    """Return True when a route (its dependant) authenticates with :func:`api_key`."""
    return any(d.call is api_key or needs_key(d) for d in dependant.dependencies)


ScorerKeyDep = Annotated[Principal, Depends(role_key("scorer"))]
ReaderKeyDep = Annotated[Principal, Depends(role_key("scorer", "analyst"))]
AnalystKeyDep = Annotated[Principal, Depends(role_key("analyst"))]
AdminKeyDep = Annotated[Principal, Depends(role_key("admin"))]
PredictorDep = Annotated[Predictor, Depends(champion)]
ServicesDep = Annotated[Services, Depends(get_services)]
