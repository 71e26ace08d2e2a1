"""CORS origins: the one definition of a valid origin, shared by the backend's settings and `doki cors`.

Kept free of heavy imports so the CLI can check origins without loading the backend.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def origin_problem(origin: str) -> str | None:
    """Why `origin` is not a valid CORS origin (scheme://host[:port]), or None when it is."""
    fix = "write it as scheme://host[:port], e.g. https://app.example.com"
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return f"ALLOWED_ORIGINS entry {origin!r} has an invalid port: {fix}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"ALLOWED_ORIGINS entry {origin!r} is not an origin: {fix}"
    if origin.endswith("/"):
        return f"ALLOWED_ORIGINS entry {origin!r} ends with '/': browsers send origins without it; {fix}"
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        return f"ALLOWED_ORIGINS entry {origin!r} has a path, query or credentials: {fix}"
    if port is not None and f":{port}" not in parts.netloc:
        return f"ALLOWED_ORIGINS entry {origin!r} has an invalid port: {fix}"
    return None
