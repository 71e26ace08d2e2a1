"""The API's error answers as models, so the OpenAPI document describes every body a client can get, and the one
handler that renders them.

Every error the API itself answers, the token check's 401 and 503 included, is `{"detail": "<message>", "code",
"hint", ...}`: `detail` is the text for a person, a string as FastAPI's own `HTTPException` gives (a frontend written
for `alert(data.detail)` keeps working), `code` the stable machine-readable part, `hint` the fix; some codes add
fields, such as `missing_scopes`. FastAPI's own answers keep their shapes: 422 with its validation errors, and
`{"detail": "<text>"}` for a body it cannot read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, cast

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.utils import is_body_allowed_for_status_code
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException


class ErrorOut(BaseModel):
    """An error: a refused token, a connector or sign-in failure."""

    # Some codes carry more (`connect`, `missing_scopes`): documented as allowed, never required.
    model_config = ConfigDict(extra="allow")

    detail: str = Field(description="what went wrong, for a person")
    code: str = Field(description="machine-readable, stable: what went wrong")
    hint: str = Field(description="what to do about it")


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


async def http_error_rendered(request: Request, exc: Exception) -> Response:
    """An `HTTPException` answer. The API's own errors are raised with `{code, message, hint, ...}` (see
    doki.connectors.errors) and answered flat, the message as `detail`; any other detail (FastAPI's and Starlette's
    text, such as "Not Found") and bodiless statuses (204, 304) are answered as FastAPI answers them."""
    error = cast(StarletteHTTPException, exc)  # registered for StarletteHTTPException alone
    detail = error.detail
    if not (isinstance(detail, dict) and "message" in detail and is_body_allowed_for_status_code(error.status_code)):
        return await http_exception_handler(request, error)
    fields = {key: value for key, value in detail.items() if key != "message"}
    return _ASCIIJSONResponse(
        status_code=error.status_code, content={"detail": detail["message"], **fields}, headers=error.headers
    )


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
