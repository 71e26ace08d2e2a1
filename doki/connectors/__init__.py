"""Connectors: the user's Google account and spreadsheets (`google`, `sheets`), the user's own Supabase project
(`supabase_project`), the errors they answer with (`errors`), and the HTTP clients Google's connectors share.

`Upstreams` is made in the app's lifespan and reaches routes through `doki.api.deps`. It builds its HTTP client
and the connectors on first use, the way `VerifierProvider` does: httpx and the connectors stay out of a cold
start until the first request that needs them. Its `sleep` and `clock` are what tests replace.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from doki.auth.supabase_auth import SupabaseAuthClient
    from doki.connectors.google import GoogleAccounts, UsedStates
    from doki.connectors.http import Upstream
    from doki.connectors.sheets import SheetsClient
    from doki.crypto import CredentialCipher
    from doki.settings import Settings
    from doki.storage import CredentialStore


class Upstreams:
    """The app's clients for Google and Supabase Auth; the lifespan closes them."""

    def __init__(self, settings: Settings, store: CredentialStore, cipher: CredentialCipher) -> None:
        self._settings = settings
        self._store = store
        self._cipher = cipher
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.clock: Callable[[], float] = time.time
        self._http: httpx.AsyncClient | None = None
        self._upstream: Upstream | None = None
        self._google: GoogleAccounts | None = None
        self._sheets: SheetsClient | None = None
        self._used_states: UsedStates | None = None

    def google(self) -> GoogleAccounts:
        if self._google is None:
            from doki.connectors.google import GoogleAccounts, GoogleClientConfig, GoogleOAuth

            config = GoogleClientConfig.from_settings(self._settings)
            oauth = GoogleOAuth(config, self._shared_upstream()) if config else None
            self._google = GoogleAccounts(oauth, self._store, self._cipher, clock=lambda: self.clock())
        return self._google

    def sheets(self) -> SheetsClient:
        if self._sheets is None:
            from doki.connectors.sheets import SheetsClient

            self._sheets = SheetsClient(
                self._shared_upstream(),
                drive_url=self._settings.google_drive_api_url,
                sheets_url=self._settings.google_sheets_api_url,
            )
        return self._sheets

    def supabase_auth(self) -> SupabaseAuthClient | None:
        from doki.auth.supabase_auth import SupabaseAuthClient

        return SupabaseAuthClient.from_settings(self._settings, self._shared_http())

    def used_states(self) -> UsedStates:
        if self._used_states is None:
            from doki.connectors.google import UsedStates

            self._used_states = UsedStates()
        return self._used_states

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        self._http = self._upstream = self._google = self._sheets = None

    def _shared_http(self) -> httpx.AsyncClient:
        # No await in here: on the event loop it runs whole, so two first requests cannot make two clients.
        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient()
        return self._http

    def _shared_upstream(self) -> Upstream:
        if self._upstream is None:
            from doki.connectors.http import Upstream

            self._upstream = Upstream(self._shared_http(), sleep=lambda seconds: self.sleep(seconds))
        return self._upstream
