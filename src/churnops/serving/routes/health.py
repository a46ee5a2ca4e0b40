"""Liveness, readiness and Prometheus metrics (no key needed: probes and scrapers)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from churnops.serving.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    """Answer 200 while the process runs, model or not."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="A model is loaded and serving",
    responses={503: {"description": "No model loaded yet"}},
)
async def readyz(services: ServicesDep) -> JSONResponse:
    """Answer 200 with the serving version once a model is loaded, else 503 with why not."""
    champion = services.models.champion
    if champion is None:
        return JSONResponse(
            {"status": "loading", "reason": services.models.not_ready_reason},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse(
        {
            "status": "ready",
            "model": {"name": champion.name, "version": champion.version},
            "source": champion.source,
        }
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(services: ServicesDep) -> Response:
    """Return every metric in the Prometheus text format."""
    body, content_type = services.metrics.render()
    return Response(body, media_type=content_type)
