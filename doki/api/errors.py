"""The API's error answers as models, so the OpenAPI document describes every body a client can get.

Every error the API itself answers, the token check's 401 and 503 included, is `{"detail": {"code", "message",
"hint", ...}}` (some codes add fields, such as `missing_scopes`). Only FastAPI's own answers differ: 422 with its
validation errors, and `{"detail": "<text>"}` for a body it cannot read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, cast

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    # Some codes carry more (`connect`, `missing_scopes`): documented as allowed, never required.
    model_config = ConfigDict(extra="allow")

    code: str = Field(description="machine-readable, stable: what went wrong")
    message: str = Field(description="what went wrong, for a person")
    hint: str = Field(description="what to do about it")


class ErrorOut(BaseModel):
    """An error: a refused token, a connector or sign-in failure."""

    detail: ErrorDetail


class MessageOut(BaseModel):
    """A request body FastAPI could not read."""

    detail: str


def error_responses(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status answered with an `ErrorOut`, described."""
    return {status: {"model": ErrorOut, "description": text} for status, text in descriptions.items()}


class _ASCIIJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped: it encodes whatever the strings hold."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


async def validation_failed(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 answer, rendered so that it cannot fail. Its errors echo the input, which Python's JSON reader
    fills with what JSON cannot carry back: a lone surrogate ("\\ud800"), which no UTF-8 encoder takes, and NaN or
    Infinity (`1e999`), which no JSON writer may emit. FastAPI's own rendering fails on either, into a 500."""
    errors = cast(RequestValidationError, exc).errors()  # registered for RequestValidationError alone
    return _ASCIIJSONResponse(status_code=422, content={"detail": _finite(jsonable_encoder(errors))})


def _finite(value: Any) -> Any:
    """`value` with each NaN or infinite float written as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
