"""Authentication: turning a request's Supabase access token into a `Principal`, or refusing it.

Supabase Auth signs users in; Doki only verifies what Supabase signed (see `verifier` for the rules and why).
Routes get a `Principal` through the FastAPI dependency and never touch tokens themselves.
"""

from doki.auth.principal import DEVELOPMENT_PRINCIPAL, Principal
from doki.auth.verifier import AuthError, AuthUnavailableError, InvalidTokenError, TokenVerifier

__all__ = [
    "DEVELOPMENT_PRINCIPAL",
    "AuthError",
    "AuthUnavailableError",
    "InvalidTokenError",
    "Principal",
    "TokenVerifier",
]
