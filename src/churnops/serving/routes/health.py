"""Liveness, readiness and Prometheus metrics (no key needed: probes and scrapers).

Load balancers often probe with ``HEAD``, so both probes answer it too: the same status
and headers as ``GET``, no body.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from churnops.serving.deps import Services, ServicesDep

router = APIRouter(tags=["health"])
NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"description": "No model loaded yet, or draining before shutdown"}
}


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    """Answer 200 while the process runs, model or not."""
    return {"status": "ok"}


@router.head("/healthz", summary="The process is alive (no body)")
async def healthz_head() -> Response:
    """Answer 200 while the process runs, without a body (GET's headers: JSON)."""
    return Response(media_type="application/json")


@router.get("/readyz", summary="A model is loaded and serving", responses=NOT_READY)
async def readyz(services: ServicesDep) -> JSONResponse:
    """Answer 200 with the serving version once a model is loaded, else 503 with why not."""
    status, body = _readiness(services)
    return JSONResponse(body, status_code=status, headers=_retry(status))


@router.head("/readyz", summary="A model is loaded and serving (no body)", responses=NOT_READY)
async def readyz_head(services: ServicesDep) -> Response:
    """Answer 200 or 503 as ``GET /readyz`` does, without a body."""
    status, _ = _readiness(services)
    return Response(status_code=status, headers=_retry(status), media_type="application/json")


def _readiness(services: Services) -> tuple[int, dict[str, Any]]:
    """Not ready while draining (SIGTERM: the balancer should stop sending) or loading."""
    if services.draining:
        return 503, {"status": "draining", "reason": "the server is shutting down"}
    champion = services.models.champion
    if champion is None:
        return 503, {"status": "loading", "reason": services.models.not_ready_reason}
    return 200, {
        "status": "ready",
        "model": {"name": champion.name, "version": champion.version},
        "source": champion.source,
    }


def _retry(status: int) -> dict[str, str] | None:
    return {"Retry-After": "5"} if status == 503 else None


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(services: ServicesDep) -> Response:
    """Return every metric in the Prometheus text format."""
    body, content_type = services.metrics.render()
    return Response(body, media_type=content_type)
