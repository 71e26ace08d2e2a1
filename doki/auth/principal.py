"""Who is calling: the one fact about a request that the rest of Doki needs from authentication.

Routes depend on a `Principal`, never on a raw token or its claims, so they cannot act on a claim nobody
checked, and development can stand in a fixed user without faking a token.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified Supabase user. Frozen: once verification built it, nothing downstream changes who it is."""

    user_id: str
    """The Supabase user id (the token's `sub`, a UUID): the key for everything stored per user."""
    email: str | None
    """The user's email when they have one (phone and anonymous users do not)."""
    role: str
    """The Postgres role the token carries; verification only lets "authenticated" through."""

    def as_dict(self) -> dict[str, str | None]:
        return {"user_id": self.user_id, "email": self.email, "role": self.role}


# The fixed user development runs as when no Supabase project is configured. A valid UUIDv4, so code that
# parses user ids behaves exactly as with real ones; the `.local` domain cannot belong to anybody.
DEVELOPMENT_PRINCIPAL = Principal(
    user_id="00000000-0000-4000-8000-000000000001",
    email="dev@doki.local",
    role="authenticated",
)
