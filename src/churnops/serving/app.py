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
from churnops.errors import ChurnopsError
from churnops.scoring import Predictor
from churnops.serving.audit import AuditWriter
from churnops.serving.auth import KeyCache
from churnops.serving.deps import ScoringPool, Services, needs_key
from churnops.serving.drain import drain_on_sigterm
from churnops.serving.fast import SCORING_PATHS, ScoringRoutes
from churnops.serving.metrics import Metrics
from churnops.serving.middleware import ServingMiddleware
from churnops.serving.problems import problem_response, public
from churnops.serving.ratelimit import make_limits
from churnops.serving.routes import admin, health, predict, reports
from churnops.serving.schemas import customer_model
from churnops.serving.state import Loader, ModelState, freeze_heap

log = logging.getLogger("churnops.serving")

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
        freeze_heap()  # what start-up imported (the store, the key cache) is long-lived too
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
        telemetry=_telemetry(),
    )
    app.state.services = services
    app.include_router(health.router)
    app.include_router(predict.router)
    app.include_router(admin.router)
    app.include_router(reports.router)
    # Innermost: the scoring routes answer here, behind every check below (serving/fast.py).
    app.add_middleware(ScoringRoutes, services=services, routes=_routes(app))
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


def _telemetry() -> dict[str, bool]:
    """FastAPI's native OpenTelemetry signals: on for each provider configured at start-up.

    Left at FastAPI's defaults, every request asks OpenTelemetry whether a provider has
    appeared since (~4 µs, environment lookups included), although none is configured
    unless the process set one up before the app is built (``opentelemetry-instrument``
    does, at start-up). Deciding once keeps spans for those who configure OpenTelemetry and
    costs nothing for those who scrape ``/metrics``.
    """
    from opentelemetry import _logs, metrics, trace

    def configured(provider: object) -> bool:
        return not type(provider).__name__.startswith(("Proxy", "_Proxy"))

    return {
        "tracing": configured(trace.get_tracer_provider()),
        "metrics": configured(metrics.get_meter_provider()),
        "logs": configured(_logs.get_logger_provider()),
    }


def _routes(app: FastAPI) -> dict[str, APIRoute]:
    """Return the declared FastAPI route of each path the scoring layer answers."""
    return {
        route.path: route
        for context in iter_route_contexts(app.routes)  # included routers' routes too
        if isinstance(route := context.original_route, APIRoute)
        and route.path in SCORING_PATHS
        and "POST" in route.methods
    }


async def _load(models: ModelState) -> None:
    """Load the champion in the background, retrying while it fails (readyz says why)."""
    attempt = 0
    while True:
        try:
            await asyncio.to_thread(models.load_initial)
            log.info("model loaded", extra={"version": models.champion.version})  # type: ignore[union-attr]
            return
        except ChurnopsError as exc:
            models.not_ready_reason = public(exc.message)
        except Exception as exc:
            models.not_ready_reason = f"loading failed ({type(exc).__name__})"
            log.exception("model load failed")
        delay = LOAD_RETRY_SECONDS[min(attempt, len(LOAD_RETRY_SECONDS) - 1)]
        log.error("model not loaded, retrying in %ss: %s", delay, models.not_ready_reason)
        attempt += 1
        await asyncio.sleep(delay)


def _install_error_handlers(app: FastAPI) -> None:
    """Map the error tree to HTTP once (``serving/problems.py``); nothing else gets out."""

    async def answer(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, ChurnopsError | RequestValidationError | StarletteHTTPException):
            log.error("unhandled error", exc_info=exc)
        return problem_response(request.scope, exc)

    for kind in (ChurnopsError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(kind, answer)


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
