"""The FastAPI app: services built once, the model loaded in the lifespan, routers included.

``create_app`` is what tests and ``churnops serve`` call; ``app_from_env`` is the uvicorn
factory used for ``--workers N`` (each worker reads the same ``CHURNOPS_*`` settings).

``/docs`` and ``/redoc`` load their scripts from this server (``fastapi-offline`` ships
Swagger UI and ReDoc), not from a CDN, so they work on a network without internet access.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from churnops.config import Settings, get_settings
from churnops.errors import ChurnopsError, ServingError
from churnops.redact import redact
from churnops.scoring import Predictor
from churnops.serving.audit import AuditWriter
from churnops.serving.auth import KeyCache
from churnops.serving.deps import ScoringPool, Services, needs_key
from churnops.serving.drain import drain_on_sigterm
from churnops.serving.metrics import Metrics
from churnops.serving.middleware import ServingMiddleware
from churnops.serving.ratelimit import make_limits
from churnops.serving.routes import admin, health, predict, reports
from churnops.serving.schemas import customer_model
from churnops.serving.state import Loader, ModelState

log = logging.getLogger("churnops.serving")

# Absolute paths and file/sqlite URIs never leave the server (they name its internals).
_PATHS = re.compile(
    r"(?:[A-Za-z][A-Za-z0-9+.-]*:)?/{1,4}(?:[^\s'\",;:()\[\]{}]+/)+[^\s'\",;:()\[\]{}]*"
)
LOAD_RETRY_SECONDS = (1, 2, 5, 10, 30)
# The two ways to present a key (serving/deps.py reads both), as OpenAPI security schemes.
SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An API key."},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
KEY_REQUIRED = [{"bearerAuth": []}, {"apiKeyHeader": []}]  # either one


def create_app(
    settings: Settings | None = None,
    *,
    predictor: Predictor | None = None,
    loader: Loader | None = None,
    no_auth: bool | None = None,
) -> FastAPI:
    """Build the scoring API.

    Args:
        settings: defaults to :func:`get_settings`.
        predictor: an already loaded champion (``churnops serve`` loads it before binding
            the port so a missing model is a clear CLI error); otherwise the lifespan loads
            the champion in the background and ``/readyz`` answers 503 until it is ready.
        loader: how to load a model by alias (tests plug in fakes); default: the registry,
            falling back to the last-known-good copy.
        no_auth: serve without API keys (``--insecure-no-auth``); default from settings.
    """
    settings = settings or get_settings()
    no_auth = settings.serve_no_auth if no_auth is None else no_auth
    metrics = Metrics()
    models = ModelState(settings, metrics, loader=loader)
    if predictor is not None:
        models._install(predictor, None)
    services = Services(
        settings=settings,
        models=models,
        metrics=metrics,
        audit=AuditWriter(settings, on_drop=metrics.audit_dropped.inc)
        if settings.serve_audit
        else None,
        keys=None if no_auth else KeyCache(settings),
        limits=make_limits(
            key_rate=settings.serve_rate_limit,
            key_burst=settings.serve_rate_burst,
            address_rate=settings.serve_ip_rate_limit,
            address_burst=settings.serve_ip_rate_burst,
            redis_url=settings.redis_url,
            on_redis_error=settings.serve_rate_limit_on_redis_error,
            unavailable=metrics.ratelimit_redis_unavailable,
        ),
        scoring=ScoringPool(
            settings.serve_max_concurrent_batches,
            settings.serve_batch_queue,
            metrics.scoring_rejected.inc,
        ),
    )

    def start_draining() -> None:
        services.draining = True

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        undo_drain = drain_on_sigterm(start_draining, settings.serve_drain_seconds)
        if services.audit is not None:
            await services.audit.start()
        if services.keys is not None:
            await asyncio.to_thread(services.keys.refresh)
        else:
            log.warning("serving WITHOUT authentication (--insecure-no-auth)")
        tasks = []
        if models.champion is None:
            tasks.append(asyncio.create_task(_load(models)))
        elif models.wants_challenger and models.challenger is None:
            await asyncio.to_thread(models._load_challenger)
        if settings.serve_poll_seconds > 0:
            tasks.append(asyncio.create_task(models.poll(settings.serve_poll_seconds)))
        tasks.append(asyncio.create_task(metrics.watch_loop_lag()))
        try:
            yield
        finally:
            undo_drain()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if services.audit is not None:
                await services.audit.stop()
            await services.limits.close()
            services.scoring.close()

    app = FastAPIOffline(
        title="churnops scoring API",
        version="1",
        summary="Churn probability, flag and reasons for customers, from the champion model.",
        lifespan=lifespan,
    )
    app.state.services = services
    app.include_router(health.router)
    app.include_router(predict.router)
    app.include_router(admin.router)
    app.include_router(reports.router)
    if settings.serve_trusted_hosts:  # inside ServingMiddleware: a refusal is still counted
        app.add_middleware(
            TrustedHostMiddleware, allowed_hosts=settings.serve_trusted_hosts, www_redirect=False
        )
    app.add_middleware(
        ServingMiddleware,
        metrics=metrics,
        audit=services.audit,
        max_body=settings.serve_max_body_bytes,
        timeout=settings.serve_timeout_seconds,
        access_log=settings.serve_access_log,
    )
    _install_error_handlers(app)
    _install_openapi(app, models, settings.serve_batch_limit, secured=not no_auth)
    return app


def app_from_env() -> FastAPI:
    """Uvicorn factory for ``--workers N``: JSON logs, settings from the environment."""
    from churnops.serving.logs import configure_logging

    configure_logging()
    return create_app(get_settings())


async def _load(models: ModelState) -> None:
    """Load the champion in the background, retrying while it fails (readyz says why)."""
    attempt = 0
    while True:
        try:
            await asyncio.to_thread(models.load_initial)
            log.info("model loaded", extra={"version": models.champion.version})  # type: ignore[union-attr]
            return
        except ChurnopsError as exc:
            models.not_ready_reason = _public(exc.message)
        except Exception as exc:
            models.not_ready_reason = f"loading failed ({type(exc).__name__})"
            log.exception("model load failed")
        delay = LOAD_RETRY_SECONDS[min(attempt, len(LOAD_RETRY_SECONDS) - 1)]
        log.error("model not loaded, retrying in %ss: %s", delay, models.not_ready_reason)
        attempt += 1
        await asyncio.sleep(delay)


def _public(message: str) -> str:
    """Return ``message`` without URL passwords, absolute paths or file URIs."""
    return _PATHS.sub("<path>", redact(message))


def _error(
    request: Request, status: int, payload: dict[str, Any], headers: Any = None
) -> JSONResponse:
    payload["message"] = str(payload.get("message", ""))
    for key, value in payload.items():  # message, reason, …: strip paths from every text
        if isinstance(value, str):
            payload[key] = _public(value)
    payload["request_id"] = request.scope.get("state", {}).get("request_id")
    return JSONResponse(payload, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    """Map the error tree to HTTP once; nothing else ever reaches the client."""

    @app.exception_handler(ChurnopsError)
    async def churnops_error(request: Request, exc: ChurnopsError) -> JSONResponse:
        headers = exc.headers if isinstance(exc, ServingError) else None
        return _error(request, exc.http_status, exc.to_dict(), headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ())[1:]) or None,
                "message": str(e.get("msg", "invalid")),
                "sent": e.get("input") if isinstance(e.get("input"), str | int | float) else None,
            }
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"field": None, "message": "invalid request"}
        return _error(
            request,
            422,
            {
                "error": "RequestValidationError",
                "message": f"{first['field'] or 'request'}: {first['message']}",
                "errors": problems,
            },
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(
            request,
            exc.status_code,
            {"error": "HTTPError", "message": str(exc.detail)},
            getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return _error(
            request,
            500,
            {
                "error": "InternalError",
                "message": "Internal error; the server log has the details under this request id.",
            },
        )


def _install_openapi(app: FastAPI, models: ModelState, batch_limit: int, secured: bool) -> None:
    """Describe ``CustomerIn`` from the serving model's contract (rebuilt after a reload).

    With keys on (``secured``), the spec declares the two key schemes and puts them on each
    route whose dependencies authenticate, read from the route table (so a new route is
    described as it is enforced); every other route says ``security: []``. Written into the
    spec rather than declared as FastAPI security dependencies, which would cost every
    request their parsing.
    """
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        champion = models.champion
        key = champion.version if champion is not None else ""
        if key in cache:
            return cache[key]
        spec = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            routes=app.routes,
        )
        customer: dict[str, Any] = {"type": "object", "title": "CustomerIn"}
        if champion is not None:
            model = customer_model(champion.model.contract, champion.example())
            customer = model.model_json_schema(by_alias=True)
            customer["additionalProperties"] = True  # unknown fields are ignored, as in tables
        components = spec.setdefault("components", {})
        if secured:
            components["securitySchemes"] = SECURITY_SCHEMES
            for route in iter_route_contexts(app.routes):  # included routers' routes too
                if isinstance(route.original_route, APIRoute) and route.include_in_schema:
                    security = KEY_REQUIRED if needs_key(route.dependant) else []
                    for method in route.methods:
                        spec["paths"][route.path_format][method.lower()]["security"] = security
        schemas = components.setdefault("schemas", {})
        schemas["CustomerIn"] = customer
        schemas["CustomersIn"] = {
            "type": "object",
            "title": "CustomersIn",
            "properties": {
                "customers": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/CustomerIn"},
                    "minItems": 1,
                    "maxItems": batch_limit,
                }
            },
            "required": ["customers"],
            "additionalProperties": False,
        }
        cache.clear()
        cache[key] = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
