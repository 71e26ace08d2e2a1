"""What token verification answers when it cannot say who the caller is.

Kept apart from the verifier so the request path can name these errors without importing PyJWT and httpx,
which load only when the first token arrives.
"""

from __future__ import annotations

from typing import ClassVar


class AuthError(Exception):
    """A token was not accepted. `description` is short and safe to send to the client."""

    status_code: ClassVar[int] = 401

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class InvalidTokenError(AuthError):
    """The token is not a valid access token for this project: answer 401."""

    status_code: ClassVar[int] = 401


class AuthUnavailableError(AuthError):
    """The token could not be checked because Supabase's signing keys are unreachable: answer 503, not 401, so
    clients retry instead of signing the user out."""

    status_code: ClassVar[int] = 503
