"""Authentication: turning a request's Supabase access token into a `Principal`, or refusing it.

Supabase Auth signs users in; Doki only verifies what Supabase signed (see `verifier` for the rules and why).
Routes get a `Principal` through the FastAPI dependency and never touch tokens themselves. The verifier itself is
imported from `doki.auth.verifier` where needed: it pulls in PyJWT and httpx, which start-up does without.
"""

from doki.auth.errors import AuthError, AuthUnavailableError, InvalidTokenError
from doki.auth.principal import DEVELOPMENT_PRINCIPAL, Principal
from doki.auth.provider import VerifierProvider

__all__ = [
    "DEVELOPMENT_PRINCIPAL",
    "AuthError",
    "AuthUnavailableError",
    "InvalidTokenError",
    "Principal",
    "VerifierProvider",
]
