"""The OpenAPI document, completed with the answers no route signature shows, so that it lists every status and
body the server can give (schemathesis holds the server to it: tests/doki/hardening/).

- An operation that needs a signed-in user may answer 401 (token missing or refused, with a `WWW-Authenticate`
  challenge) and 503 (Supabase's signing keys unreachable, with `Retry-After`), in the `ErrorOut` shape.
- In development a request without `Authorization` runs as the development user, so there the bearer token is
  documented as optional on every route (sign-out too: without a token there is no Supabase session to end).
- An operation with a body may answer 400 when FastAPI cannot read it (not UTF-8), and any operation with
  parameters or a body answers 422 with FastAPI's validation errors, next to its own 422s.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import validation_error_definition, validation_error_response_definition

from doki.api.errors import ErrorOut

BEARER: dict[str, list[str]] = {"HTTPBearer": []}
_ERROR = {"$ref": "#/components/schemas/ErrorOut"}
_VALIDATION = {"$ref": "#/components/schemas/HTTPValidationError"}


class CompletedOpenAPI:
    """Stands in for `app.openapi`: FastAPI's document (rebuilt when routes change), completed once per build."""

    def __init__(self, app: FastAPI, *, bearer_optional: bool) -> None:
        self._app = app
        self._bearer_optional = bearer_optional
        self._completed: dict[str, Any] | None = None

    def __call__(self) -> dict[str, Any]:
        spec = FastAPI.openapi(self._app)
        if spec is not self._completed:
            complete(spec, bearer_optional=self._bearer_optional)
            self._completed = spec
        return spec


def complete(spec: dict[str, Any], *, bearer_optional: bool) -> None:
    """Add to `spec`, in place, the answers FastAPI leaves out (see the module docstring)."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("ErrorOut", ErrorOut.model_json_schema())
    schemas.setdefault("ValidationError", validation_error_definition)
    schemas.setdefault("HTTPValidationError", validation_error_response_definition)
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            has_body = "requestBody" in operation
            if has_body:
                _add(responses, "400", "the body cannot be read", _ERROR)
            if has_body or operation.get("parameters"):
                _add(responses, "422", "Validation Error", _VALIDATION)
            if BEARER not in operation.get("security", []):
                continue
            _add(
                responses,
                "401",
                "no valid Supabase access token: sign in, then send it as 'Authorization: Bearer <token>'",
                _ERROR,
                {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
            )
            _add(
                responses,
                "503",
                "the token cannot be checked now (Supabase's signing keys are unreachable): retry",
                _ERROR,
                {"Retry-After": {"schema": {"type": "string"}}},
            )
            if bearer_optional:
                operation["security"] = [BEARER, {}]


def _add(
    responses: dict[str, Any],
    status: str,
    description: str,
    schema: dict[str, Any],
    headers: dict[str, Any] | None = None,
) -> None:
    """Document `schema` as a JSON answer with `status`: alone, or as an alternative to what the route declared."""
    declared = responses.get(status)
    if declared is None:
        responses[status] = {"description": description, "content": {"application/json": {"schema": schema}}}
        if headers:
            responses[status]["headers"] = headers
        return
    media = declared.setdefault("content", {}).setdefault("application/json", {})
    current = media.get("schema")
    if not current:
        media["schema"] = schema
        return
    options = current["anyOf"] if set(current) == {"anyOf"} else [current]
    if schema not in options:
        media["schema"] = {"anyOf": [*options, schema]}
    if description not in declared.get("description", ""):
        declared["description"] = f"{declared.get('description', '')}; or {description}"
