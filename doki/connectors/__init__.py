"""Connectors: the user's Google account and spreadsheets (`google`, `sheets`), the user's own Supabase project
(`supabase_project`), the errors they answer with (`errors`), the HTTP clients Google's connectors share, and
`call_store`, the one way a request calls the credential store.

`Upstreams` is made in the app's lifespan and reaches routes through `doki.api.deps`. It builds its HTTP client
and the connectors on first use, the way `VerifierProvider` does: httpx and the connectors stay out of a cold
start until the first request that needs them. Its `sleep`, `clock` and `monotonic` are what tests replace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread

from doki.connectors.errors import store_failure
from doki.storage import StoreError

if TYPE_CHECKING:
    import httpx

    from doki.auth.supabase_auth import SupabaseAuthClient
    from doki.connectors.google import GoogleAccounts, UsedStates
    from doki.connectors.http import Upstream
    from doki.connectors.sheets import SheetsClient
    from doki.crypto import CredentialCipher
    from doki.settings import Settings
    from doki.storage import CredentialStore


# What one API request may spend on Google in all, retries and their waits included.
REQUEST_BUDGET_SECONDS = 30.0
T = TypeVar("T")
logger = logging.getLogger(__name__)


async def call_store(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`function(*args, **kwargs)`, a credential store call, in a worker thread: the stores block (SQLite, sync
    HTTP to Supabase), and one slow store must stall no other request. Its failures become 503 `ConnectorError`s
    (see `store_failure`), the details logged for the operator."""
    try:
        return await anyio.to_thread.run_sync(lambda: function(*args, **kwargs))
    except StoreError as error:
        failure = store_failure(error)
        log = logger.warning if failure.code == "store_unavailable" else logger.error
        log("credential store %s: %s", failure.code.removeprefix("store_"), error)
        raise failure from None


class Upstreams:
    """The app's clients for Google and Supabase Auth; the lifespan closes them."""

    def __init__(self, settings: Settings, store: CredentialStore, cipher: CredentialCipher) -> None:
        self._settings = settings
        self._store = store
        self._cipher = cipher
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.clock: Callable[[], float] = time.time
        # For deadlines: never set back, unlike the wall clock.
        self.monotonic: Callable[[], float] = time.monotonic
        self.google_budget_seconds = REQUEST_BUDGET_SECONDS
        self._http: httpx.AsyncClient | None = None
        self._upstream: Upstream | None = None
        self._google: GoogleAccounts | None = None
        self._sheets: SheetsClient | None = None
        self._used_states: UsedStates | None = None

    def google(self) -> GoogleAccounts:
        if self._google is None:
            from doki.connectors.google import GoogleAccounts, GoogleClientConfig, GoogleOAuth

            config = GoogleClientConfig.from_settings(self._settings)
            oauth = GoogleOAuth(config, self._shared_upstream(), clock=lambda: self.clock()) if config else None
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

    def google_deadline(self) -> AbstractContextManager[None]:
        """Wrap an API request's Google calls: together they get `google_budget_seconds`, retries included."""
        from doki.connectors.http import deadline

        return deadline(self.monotonic() + self.google_budget_seconds)

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

            self._upstream = Upstream(
                self._shared_http(), sleep=lambda seconds: self.sleep(seconds), clock=lambda: self.monotonic()
            )
        return self._upstream
