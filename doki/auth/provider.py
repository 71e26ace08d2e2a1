"""The process's one TokenVerifier, built when the first token arrives.

PyJWT, httpx and an SSL context for the JWKS fetch cost tens of milliseconds: a Cloud Run cold start answers its
first health check without them, and pays once, on the first signed-in request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from doki.auth.verifier import TokenVerifier
    from doki.settings import Settings


class VerifierProvider:
    """Owns the verifier and its HTTP client; the app's lifespan closes it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._http: httpx.AsyncClient | None = None
        self._verifier: TokenVerifier | None = None

    def get(self) -> TokenVerifier:
        # No await inside: on the event loop this runs whole, so two first requests cannot build two verifiers.
        if self._verifier is None:
            import httpx

            from doki.auth.verifier import TokenVerifier

            self._http = httpx.AsyncClient()
            self._verifier = TokenVerifier.from_settings(self._settings, self._http)
        return self._verifier

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
            self._verifier = None
