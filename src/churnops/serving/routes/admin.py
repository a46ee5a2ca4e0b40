"""Model information and atomic reload."""

from __future__ import annotations

from fastapi import APIRouter

from churnops.serving.deps import AdminKeyDep, PredictorDep, ReaderKeyDep, ServicesDep
from churnops.serving.routes.predict import ERROR_RESPONSES
from churnops.serving.schemas import ModelInfo, ReloadOut, feature_summary

router = APIRouter(tags=["model"])


@router.get("/v1/model", response_model=ModelInfo, responses=ERROR_RESPONSES)
async def model_info(
    _principal: ReaderKeyDep, predictor: PredictorDep, services: ServicesDep
) -> ModelInfo:
    """Return the serving version, its holdout metrics, threshold and contract summary."""
    challenger = services.models.challenger
    contract = predictor.model.contract
    return ModelInfo(
        name=predictor.name,
        version=predictor.version,
        run_id=predictor.run_id,
        family=predictor.family,
        source=predictor.source,
        threshold=predictor.threshold,
        metrics=predictor.holdout,
        loaded_at=predictor.loaded_at,
        id_column=contract.id,
        features=feature_summary(contract),
        challenger=(
            {"version": challenger.version, "family": challenger.family} if challenger else None
        ),
        canary_share=services.models.canary_share,
        shadow=services.models.shadow,
    )


@router.post(
    "/v1/admin/reload",
    response_model=ReloadOut,
    responses={**ERROR_RESPONSES, 409: {"description": "Reload failed; the old model serves"}},
    tags=["admin"],
)
async def reload(_principal: AdminKeyDep, services: ServicesDep) -> ReloadOut:
    """Load the current champion, switch to it only once it is ready; return both versions.

    A reload that fails (missing alias, corrupt artifact, a model that cannot score its
    contract) answers 409 with the reason, and the model that was serving keeps serving.
    """
    result = await services.models.reload()
    return ReloadOut(**result.to_dict())
