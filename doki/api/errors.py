"""The API's error answers as models, so the OpenAPI document describes every body a client can get, and the one
handler that renders them.

Every error is `{"detail": "<message>", "code", "hint", ...}`: `detail` is the text for a person, a string as
FastAPI's own `HTTPException` gives (a frontend written for `alert(data.detail)` keeps working), `code` the stable
machine-readable part, `hint` the fix; some codes add fields, such as `missing_scopes`. That holds for the API's own
errors (the token check's 401 and 503 included), for FastAPI's and Starlette's (a body it cannot read, an unknown
path or method: their text stays `detail`) and for a failure no handler expected (`internal_error`, see
`unexpected_failure`). The one exception is FastAPI's 422, whose `detail` is its list of validation errors, as
FastAPI writes it and the original backend answered it.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, cast

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.utils import is_body_allowed_for_status_code
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("doki")

# FastAPI's and Starlette's own errors carry only a text: the code and hint they get beside it, by status.
_FRAMEWORK_ERRORS = {
    400: ("unreadable_body", "send the body as JSON, with 'Content-Type: application/json'"),
    404: ("not_found", "check the path: the routes are listed in the API's OpenAPI document (/docs in development)"),
    405: ("method_not_allowed", "check the method: the routes are listed in the API's OpenAPI document"),
}


class ErrorOut(BaseModel):
    """An error: a refused token, a connector or sign-in failure."""

    # Some codes carry more (`connect`, `missing_scopes`): documented as allowed, never required.
    model_config = ConfigDict(extra="allow")

    detail: str = Field(description="what went wrong, for a person")
    code: str = Field(description="machine-readable, stable: what went wrong")
    hint: str = Field(description="what to do about it")


def error_responses(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status answered with an `ErrorOut`, described."""
    return {status: {"model": ErrorOut, "description": text} for status, text in descriptions.items()}


class _ASCIIJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped: it encodes whatever the strings hold."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


async def http_error_rendered(request: Request, exc: Exception) -> Response:
    """An `HTTPException` answer. The API's own errors are raised with `{code, message, hint, ...}` (see
    doki.connectors.errors) and answered flat, the message as `detail`. FastAPI's and Starlette's carry a text (such
    as "Not Found"): it stays `detail`, with a code and hint beside it. Bodiless statuses (204, 304) stay bodiless."""
    error = cast(StarletteHTTPException, exc)  # registered for StarletteHTTPException alone
    detail = error.detail
    if not is_body_allowed_for_status_code(error.status_code):
        return await http_exception_handler(request, error)
    if isinstance(detail, dict) and "message" in detail:
        content = {"detail": detail["message"], **{key: value for key, value in detail.items() if key != "message"}}
    else:
        code, hint = _FRAMEWORK_ERRORS.get(error.status_code) or _by_status(error.status_code)
        content = {"detail": detail if isinstance(detail, str) else str(detail), "code": code, "hint": hint}
    return _ASCIIJSONResponse(status_code=error.status_code, content=content, headers=error.headers)


def _by_status(status: int) -> tuple[str, str]:
    """A code for a framework error no entry above names: its status's phrase, as a code."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = f"HTTP {status}"
    return phrase.lower().replace(" ", "_").replace("-", "_"), "see the API's documentation for this status"


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


class UnexpectedFailure:
    """Answers a failure no handler expected as every other error: JSON, `internal_error`, and inside CORS.

    Starlette's own last resort answers a plain-text "Internal Server Error" from outside every middleware, so the
    browser sees no CORS header and reports a CORS error instead of a 500, and a frontend's `res.json()` throws. The
    original backend answered every unexpected failure as `{"detail": "<text>"}` with its CORS headers. This sits
    innermost: the exception is logged with its traceback here (the text never reaches the client), and the answer
    is sent only if nothing of the response was.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, receive, watched)
        except Exception:
            logger.exception("unexpected failure answering %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise  # the client already has part of an answer: the server closes the connection
            answer = _ASCIIJSONResponse(
                status_code=500,
                content={
                    "detail": "Internal Server Error",
                    "code": "internal_error",
                    "hint": "retry; if it keeps failing, the server's log has the cause",
                },
            )
            await answer(scope, receive, send)
