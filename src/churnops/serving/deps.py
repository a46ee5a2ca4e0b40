"""Typed dependencies of the routes: who is calling (``ApiKeyDep``) and what serves.

``ApiKeyDep`` authenticates (``Authorization: Bearer KEY`` or ``X-API-Key: KEY``), then
takes a token from the key's rate-limit bucket. ``AdminKeyDep`` also requires the admin
role. ``PredictorDep`` is the champion predictor, or a 503 while none is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from churnops.config import Settings
from churnops.errors import AuthenticationError, ModelNotReadyError, PermissionDeniedError
from churnops.scoring import Predictor
from churnops.serving.audit import AuditWriter
from churnops.serving.auth import ANONYMOUS, KeyCache, Principal
from churnops.serving.metrics import Metrics
from churnops.serving.ratelimit import LocalLimiter, RedisLimiter
from churnops.serving.state import ModelState

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="churnops"'}


@dataclass
class Services:
    """Everything the routes share, built once per app (``app.state.services``)."""

    settings: Settings
    models: ModelState
    metrics: Metrics
    audit: AuditWriter | None
    keys: KeyCache | None  # None = --insecure-no-auth
    limiter: LocalLimiter | RedisLimiter | None


def get_services(request: Request) -> Services:
    """Return the app's shared services."""
    return request.app.state.services  # type: ignore[no-any-return]


async def api_key(request: Request) -> Principal:
    """Authenticate the caller and charge its rate-limit bucket."""
    services: Services = request.app.state.services
    if services.keys is None:
        principal = ANONYMOUS
        bucket = f"anonymous:{request.client.host if request.client else '-'}"
    else:
        key = _presented_key(request)
        if not key:
            raise AuthenticationError(
                "Missing API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'.",
                headers=_CHALLENGE,
            )
        found = services.keys.lookup(key)
        if found is None:
            raise AuthenticationError("Invalid or revoked API key.", headers=_CHALLENGE)
        principal = found
        bucket = principal.name
    request.scope["state"]["key_name"] = principal.name
    if services.limiter is not None:
        await services.limiter.take(bucket)
    return principal


def _presented_key(request: Request) -> str | None:
    headers = request.headers
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return headers.get("x-api-key") or None


async def admin_key(principal: Annotated[Principal, Depends(api_key)]) -> Principal:
    """Require the admin role."""
    if not principal.allows("admin"):
        raise PermissionDeniedError(
            f"Key {principal.name!r} has role {principal.role!r}; this route needs 'admin'."
        )
    return principal


def champion(request: Request) -> Predictor:
    """Return the serving champion or raise 503 while none is loaded."""
    models: ModelState = request.app.state.services.models
    predictor = models.champion
    if predictor is None:
        raise ModelNotReadyError(
            f"No model loaded yet: {models.not_ready_reason}.", headers={"Retry-After": "5"}
        )
    return predictor


ApiKeyDep = Annotated[Principal, Depends(api_key)]
AdminKeyDep = Annotated[Principal, Depends(admin_key)]
PredictorDep = Annotated[Predictor, Depends(champion)]
ServicesDep = Annotated[Services, Depends(get_services)]
