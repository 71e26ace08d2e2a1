"""`create_app(settings)`: the one place the backend is wired together."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.sessions import SessionMiddleware

from doki import __version__
from doki.api.routes import auth, root
from doki.auth import TokenVerifier
from doki.crypto import CredentialCipher
from doki.log import TraceContextMiddleware, configure_logging
from doki.settings import ConfigError, Settings, with_development_defaults
from doki.storage import build_store

logger = logging.getLogger("doki")

# Long enough to finish an OAuth round trip, short enough that a stolen cookie goes stale fast.
SESSION_MAX_AGE_SECONDS = 15 * 60


def create_app(settings: Settings) -> FastAPI:
    """Build the backend for `settings`. Raises ConfigError listing every problem when they cannot run."""
    settings = with_development_defaults(settings)
    problems = settings.problems()
    if problems:
        raise ConfigError(problems)
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Clients with connection pools live exactly as long as the server, so every start gets fresh ones.
        store = build_store(settings)
        try:
            async with httpx.AsyncClient() as http:
                app.state.verifier = TokenVerifier.from_settings(settings, http)
                app.state.store = store
                logger.info("Doki backend ready (%s, credential store: %s)", settings.environment, settings.store_kind)
                yield
        finally:
            store.close()

    app = FastAPI(title="Doki Backend", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.cipher = CredentialCipher.from_settings(settings)

    app.include_router(root.router)
    app.include_router(auth.router)

    # Added innermost first: CORS must answer preflights before sessions or routes see them.
    session_secret = settings.session_secret_key.get_secret_value() if settings.session_secret_key else ""
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret,
        session_cookie="doki_session",
        max_age=SESSION_MAX_AGE_SECONDS,
        same_site="lax",
        https_only=settings.is_production,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.allowed_origins,
        allow_credentials=True,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        max_age=600,
    )
    app.add_middleware(TraceContextMiddleware)
    return app
