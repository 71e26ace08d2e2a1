"""Errors the connectors raise, each carrying what the API answers: an HTTP status and a JSON body with a
machine-readable `code`, a `message` and a `hint` that says the fix.

Connectors know nothing of FastAPI; the routes turn a `ConnectorError` into an HTTP answer with `as_http`.
Messages are built from literals and upstream error texts, never from tokens or keys.
"""

from __future__ import annotations

from typing import Any


class ConnectorError(Exception):
    """A request that cannot be served as asked; `status_code` and `body()` are the API's answer."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        hint: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.hint = hint
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "hint": self.hint, **self.extra}


CONNECT_GOOGLE = "POST /auth/google/connect"
CONNECT_HINT = f"connect Google: {CONNECT_GOOGLE}, then open the authorization_url it returns"


def google_not_connected() -> ConnectorError:
    return ConnectorError(
        409, "google_not_connected", "Google is not connected for this user", hint=CONNECT_HINT, connect=CONNECT_GOOGLE
    )


def google_reconnect_required(message: str, missing_scopes: list[str] | None = None) -> ConnectorError:
    extra: dict[str, Any] = {"connect": CONNECT_GOOGLE}
    if missing_scopes is not None:
        extra["missing_scopes"] = missing_scopes
    hint = f"reconnect Google: {CONNECT_GOOGLE}, then open the authorization_url it returns"
    return ConnectorError(409, "google_reconnect_required", message, hint=hint, **extra)


def google_unavailable(message: str, *, retry_after: int = 30) -> ConnectorError:
    return ConnectorError(
        503,
        "google_unavailable",
        message,
        hint="Google is failing or unreachable for now: retry in a minute",
        headers={"Retry-After": str(retry_after)},
    )


def google_error(response: Any) -> tuple[str, str]:
    """(status or OAuth error code, message) of a Google error answer, in either of Google's two formats.

    APIs answer `{"error": {"code", "message", "status"}}`; the OAuth endpoints `{"error", "error_description"}`.
    """
    try:
        body = response.json()
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("status") or ""), str(error.get("message") or "")
    if isinstance(error, str):
        return error, str(body.get("error_description") or "")
    return "", ""
