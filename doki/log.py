"""Logging in the shape each place reads best.

On Cloud Run, one JSON object per line: Cloud Logging parses `severity` and `message`, and groups lines by request
through `logging.googleapis.com/trace` (taken from the `X-Cloud-Trace-Context` header Cloud Run adds). On a laptop,
readable lines. Either way every line passes a redactor: tokens arrive in headers and query strings, and a log is
the last place a secret should land.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime

from starlette.types import ASGIApp, Receive, Scope, Send

from doki.settings import Settings

_trace: ContextVar[str | None] = ContextVar("doki_trace", default=None)

REDACTED = "[redacted]"
# JWTs (Supabase access tokens, legacy API keys), bearer credentials, Supabase's new API keys, Google OAuth tokens.
_TOKEN_SHAPES = re.compile(
    r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|sb_(?:secret|publishable)_[A-Za-z0-9_-]+"
    r"|ya29\.[A-Za-z0-9._-]+|1//[A-Za-z0-9._-]{10,}"
)
# Query parameters that carry secrets (OAuth codes and state, tokens, keys): the name stays, the value goes.
_SECRET_PARAMS = re.compile(
    r"(?i)([?&](?:code|state|token|access_token|refresh_token|id_token|key|apikey|secret)=)[^&\s\"']+"
)


class Redactor:
    """Masks known secret values and anything shaped like a credential."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a key that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _TOKEN_SHAPES.sub(REDACTED, text)
        return _SECRET_PARAMS.sub(rf"\1{REDACTED}", text)


class CloudLoggingFormatter(logging.Formatter):
    """One JSON object per line, in the structure Cloud Logging turns into a LogEntry."""

    def __init__(self, redactor: Redactor, project_id: str | None) -> None:
        super().__init__()
        self._redact = redactor
        self._project = project_id

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        entry: dict[str, object] = {
            "severity": record.levelname if record.levelname != "WARN" else "WARNING",
            "message": self._redact(message),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        trace = _trace.get()
        if trace and self._project:
            entry["logging.googleapis.com/trace"] = f"projects/{self._project}/traces/{trace}"
        return json.dumps(entry, ensure_ascii=False)


class HumanFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S")
        self._redact = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(super().format(record))


def secret_values(settings: Settings) -> list[str]:
    values = [
        settings.session_secret_key,
        settings.encryption_key,
        settings.supabase_secret_key,
        settings.supabase_jwt_secret,
        settings.google_client_secret,
    ]
    found = [v.get_secret_value() for v in values if v is not None]
    # Each key of a list too: a rotation's list is not what a log line holds.
    return found + settings.encryption_keys + settings.session_secret_keys


def configure_logging(settings: Settings, stream: object = None) -> logging.Handler:
    """Route the root logger and uvicorn's loggers through one handler with the right formatter."""
    redactor = Redactor(secret_values(settings))
    handler = logging.StreamHandler(stream or sys.stdout)  # type: ignore[arg-type]
    formatter: logging.Formatter
    if settings.is_production:
        formatter = CloudLoggingFormatter(redactor, settings.gcp_project_id)
    else:
        formatter = HumanFormatter(redactor)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_doki", False)]:
        root.removeHandler(old)
    handler._doki = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return handler


def parse_trace_header(value: str) -> str | None:
    """The trace id of `X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=OPTIONS`, when it is well formed."""
    trace_id = value.split("/", 1)[0].strip()
    if re.fullmatch(r"[0-9a-fA-F]{32}", trace_id):
        return trace_id.lower()
    return None


class TraceContextMiddleware:
    """Pure ASGI (no per-request task or body wrapping): it only sets the trace id for the request's logs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace = None
        for name, value in scope["headers"]:
            if name == b"x-cloud-trace-context":
                trace = parse_trace_header(value.decode("latin-1"))
                break
        token = _trace.set(trace)
        try:
            await self.app(scope, receive, send)
        finally:
            _trace.reset(token)
