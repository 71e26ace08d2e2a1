"""The health contract of the deployment guide: Cloud Run, the image HEALTHCHECK and `doki` smoke tests call it."""

from fastapi import APIRouter

router = APIRouter(tags=["health"])

HEALTH_BODY = {"message": "Doki Backend up"}


@router.get("/", summary="Health check")
async def health() -> dict[str, str]:
    return HEALTH_BODY
