"""Errors the connectors raise, each carrying what the API answers: an HTTP status and a body with a
machine-readable `code`, a `message` and a `hint` that says the fix, answered as `{"detail": "<message>", "code",
"hint", ...}` (doki.api.errors).

Connectors know nothing of FastAPI; the routes raise a `ConnectorError` as an `HTTPException` whose detail is
`body()`.
Messages are built from literals and upstream error texts, never from tokens or keys.
"""

from __future__ import annotations

from typing import Any

from doki.storage import StoreError, StoreUnavailableError


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


def google_rate_limited(message: str) -> ConnectorError:
    return ConnectorError(
        429,
        "google_rate_limited",
        message,
        hint="Google's quota for this app is exhausted for now: retry in a minute",
        headers={"Retry-After": "60"},
    )


# Drive answers a rate limit 403 (not 429), telling it from a refusal only by the reason in its error list; newer
# APIs name it in an ErrorInfo detail.
RATE_LIMIT_REASONS = frozenset(
    {"userRateLimitExceeded", "rateLimitExceeded", "dailyLimitExceeded", "RATE_LIMIT_EXCEEDED"}
)


def rate_limit_reason(response: Any) -> str | None:
    """The rate-limit reason of a Google API error answer, or None when it is not a rate limit."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    for key in ("errors", "details"):
        items = error.get(key)
        for item in items if isinstance(items, list) else []:
            reason = item.get("reason") if isinstance(item, dict) else None
            if isinstance(reason, str) and reason in RATE_LIMIT_REASONS:
                return reason
    return None


def store_failure(error: StoreError) -> ConnectorError:
    """What the API answers when the credential store fails, one shape for every route:

    - unreachable, timed out or failing on its side (`StoreUnavailableError`): 503 `store_unavailable`, retry;
    - refusing the request (the table is missing, the secret key refused, the file damaged): 503
      `store_misconfigured`. Retrying does not help until an operator fixes the deployment; what to fix is for
      the server's log, not for clients.
    """
    if isinstance(error, StoreUnavailableError):
        return ConnectorError(
            503,
            "store_unavailable",
            "the credential store is unavailable",
            hint="retry in a minute",
            headers={"Retry-After": "30"},
        )
    return ConnectorError(
        503,
        "store_misconfigured",
        "the credential store refused the request: this server is misconfigured",
        hint="the server's operator must fix its credential store (the server log says what); retry afterwards",
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
