"""Report routes for the retention team: read-only, for ``analyst`` (and ``admin``) keys.

The same stage function as ``churnops report high-risk``: the CLI, the dashboard and this
route show one list. It reads the store in a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

from fastapi import APIRouter, Query, Request

from churnops.errors import DataError, NotFoundError
from churnops.serving.deps import AnalystKeyDep
from churnops.serving.routes.predict import ERROR_RESPONSES
from churnops.serving.schemas import ErrorOut

router = APIRouter(tags=["reports"])
NO_SCORES = {"model": ErrorOut, "description": "No scores (for that date)"}
RESPONSES = {**ERROR_RESPONSES, 404: NO_SCORES}


@router.get("/v1/reports/high-risk", responses=RESPONSES)
async def high_risk_report(
    request: Request,
    _principal: AnalystKeyDep,
    scoring_date: date | None = Query(None, alias="date", description="Default: the latest."),
    top: int = Query(50, ge=1, le=10_000, description="How many of the riskiest to list."),
) -> dict[str, Any]:
    """Return the riskiest customers above the threshold of a scoring date, with reasons."""
    from churnops.batch import high_risk

    settings = request.app.state.services.settings
    try:
        return await asyncio.to_thread(high_risk, settings, scoring_date, top)
    except DataError as exc:  # nothing scored (for that date): not a bad request
        raise NotFoundError(str(exc)) from exc
