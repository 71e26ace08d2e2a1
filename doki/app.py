"""`create_app(settings)`: the one place the backend is wired together."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from itsdangerous import TimestampSigner
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from doki import __version__
from doki.api.errors import UnexpectedFailure, http_error_rendered, validation_failed
from doki.api.openapi import CompletedOpenAPI
from doki.api.routes import auth, google, root, sheets, supabase
from doki.auth import VerifierProvider
from doki.connectors import Upstreams
from doki.connectors.supabase_project import SupabaseProjects
from doki.crypto import CredentialCipher
from doki.log import TraceContextMiddleware, configure_logging
from doki.settings import ConfigError, Settings, with_development_defaults
from doki.storage import build_store

logger = logging.getLogger("doki")

# Long enough to finish an OAuth round trip, short enough that a stolen cookie goes stale fast.
SESSION_MAX_AGE_SECONDS = 15 * 60
# Sessions exist for the OAuth round trips (Google sign-in and connect), and only there.
SESSION_PATH_PREFIXES = ("/auth/google/",)


def create_app(settings: Settings) -> FastAPI:
    """Build the backend for `settings`. Raises ConfigError listing every problem when they cannot run."""
    settings = with_development_defaults(settings)
    problems = settings.problems()
    if problems:
        raise ConfigError(problems)
    configure_logging(settings)
    if settings.is_production and not settings.google_redirect_uri:
        # Not a reason to refuse to start: `doki deploy` sets it from the service URL, which Cloud Run assigns
        # only once the first revision (necessarily without it) is serving.
        logger.warning(
            "GOOGLE_REDIRECT_URI is not set: signing in with and connecting Google answer 503 google_not_configured "
            "until it is; set it to https://<this service>/auth/google/callback (`doki deploy` does)"
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Clients with connection pools live exactly as long as the server, so every start gets fresh ones.
        supabase_projects = SupabaseProjects.from_settings(settings)
        store = build_store(settings)
        if settings.legacy_credentials_table:
            # Connections still only in the original backend's table are carried over as they are first asked for;
            # every caller of the store stays as it is (doki.legacy).
            from doki.legacy import LegacyCredentials, LegacyFallbackStore

            legacy = LegacyCredentials.from_settings(settings, supabase_projects.parse_url)
            store = LegacyFallbackStore(store, legacy, app.state.cipher)
        verifiers = VerifierProvider(settings)
        app.state.store = store
        app.state.verifiers = verifiers
        app.state.supabase_projects = supabase_projects
        app.state.upstreams = upstreams = Upstreams(settings, store, app.state.cipher)
        logger.info(
            "Doki backend ready (%s, credential store: %s%s)",
            settings.environment,
            settings.store_kind,
            f", carrying connections over from {settings.legacy_credentials_table}"
            if settings.legacy_credentials_table
            else "",
        )
        try:
            yield
        finally:
            await verifiers.aclose()
            await supabase_projects.aclose()
            await upstreams.aclose()
            store.close()

    app = FastAPI(title="Doki Backend", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.cipher = CredentialCipher.from_settings(settings)

    root.add_health_route(app)
    app.include_router(auth.router)
    app.include_router(supabase.router)
    app.include_router(google.router)
    app.include_router(sheets.router)
    # The document lists every answer, including those no route signature shows (401, 503, FastAPI's own 400).
    app.openapi = CompletedOpenAPI(app, bearer_optional=not settings.is_production)  # type: ignore[method-assign]
    app.add_exception_handler(RequestValidationError, validation_failed)
    # Starlette's class, as FastAPI's default handler is: this one replaces it, for FastAPI's HTTPException and for
    # Starlette's own 404 and 405 alike.
    app.add_exception_handler(StarletteHTTPException, http_error_rendered)

    # Added innermost first: CORS must answer preflights before sessions or routes see them, and wrap the answer to
    # an unexpected failure, so a browser reads it as a 500 and not as a CORS error.
    app.add_middleware(UnexpectedFailure)
    app.add_middleware(
        SessionScope,
        prefixes=SESSION_PATH_PREFIXES,
        secret_keys=settings.session_secret_keys,
        max_age=SESSION_MAX_AGE_SECONDS,
        https_only=settings.is_production,
    )
    app.add_middleware(
        CORS,
        allow_origins=settings.allowed_origins,
        allow_credentials=True,
        # Any method and request header, as the backend Doki replaces allowed: its frontends send headers of their
        # own. With credentials on, Starlette answers a preflight with the methods listed and the headers it asked
        # for, never `*`; who may call stays the exact origins above.
        allow_methods=["*"],
        allow_headers=["*"],
        max_age=600,
    )
    if settings.is_production and settings.gcp_project_id:
        # Only the Cloud Logging formatter reads the trace, and only with a project to name.
        app.add_middleware(TraceContextMiddleware)
    return app


class CORS:
    """Starlette's CORS for requests that carry an `Origin`; for the rest only the `Vary: Origin` it would add.

    Health checks and server-to-server calls send no Origin, and are most of the traffic: they skip building and
    re-parsing header objects on the way in and out.
    """

    def __init__(self, app: ASGIApp, /, **options: Any) -> None:
        self._app = app
        self._cors = CORSMiddleware(app, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(name == b"origin" for name, _ in scope["headers"]):
            await self._cors(scope, receive, send)
            return

        async def send_with_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                # The answer would differ for a request with an Origin: shared caches must key on it.
                message["headers"] = [*message.get("headers", ()), (b"vary", b"Origin")]
            await send(message)

        await self._app(scope, receive, send_with_vary)


class SessionScope:
    """Signed-cookie sessions on the paths that keep OAuth state, and nowhere else.

    Every other request (health checks, API calls with bearer tokens) skips cookie parsing and signing entirely:
    cheaper, and no session cookie is ever set where nothing needs one.
    """

    def __init__(
        self, app: ASGIApp, *, prefixes: tuple[str, ...], secret_keys: Sequence[str], max_age: int, https_only: bool
    ) -> None:
        self._app = app
        self._prefixes = prefixes
        self._with_session = SessionMiddleware(
            app,
            secret_key=secret_keys[0] if secret_keys else "",
            session_cookie="doki_session",
            max_age=max_age,
            same_site="lax",
            https_only=https_only,
        )
        if len(secret_keys) > 1:
            # The first secret signs and every one verifies, so a session signed before a rotation lives out its
            # 15 minutes. itsdangerous takes a list of keys, oldest to newest, and signs with the last.
            self._with_session.signer = TimestampSigner(list(reversed(secret_keys)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope["path"].startswith(self._prefixes):
            await self._with_session(scope, receive, send)
        else:
            await self._app(scope, receive, send)
