"""CORS origins: the one definition of a valid origin, shared by the backend's settings and `doki cors`.

CORS matches the browser's `Origin` header against each allowed origin as a string, so an origin is valid only
when written exactly as browsers send it: lower-case scheme and host, the host in ASCII (punycode), an IPv6
address compressed in brackets, the port only when it is not the scheme's default, and nothing after it.
Anything else would be accepted and then never match: it is refused, with the spelling to use.

Kept free of heavy imports so the CLI can check origins without loading the backend.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Host names as browsers send them: ASCII letters, digits, '-' and '_' in dot-separated labels.
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")
# A host whose last label is a number is an IPv4 address to a browser (WHATWG URL): it must then be one.
_NUMERIC_LAST_LABEL = re.compile(r"(.*\.)?(0x[0-9a-f]*|[0-9]+)\.?")


def origin_problem(origin: str) -> str | None:
    """Why `origin` is not a valid CORS origin (scheme://host[:port]), or None when it is."""
    fix = "write it as scheme://host[:port], e.g. https://app.example.com"
    if any(c.isspace() or not c.isprintable() for c in origin):
        return f"ALLOWED_ORIGINS entry {origin!r} contains spaces or control characters: {fix}"
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return f"ALLOWED_ORIGINS entry {origin!r} has an invalid port: {fix}"
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return f"ALLOWED_ORIGINS entry {origin!r} is not an origin: {fix}"
    if origin.endswith("/"):
        return f"ALLOWED_ORIGINS entry {origin!r} ends with '/': browsers send origins without it; {fix}"
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        return f"ALLOWED_ORIGINS entry {origin!r} has a path, query or credentials: {fix}"
    if port == 0 or (port is not None and f":{port}" not in parts.netloc):
        return f"ALLOWED_ORIGINS entry {origin!r} has an invalid port: {fix}"
    host = _browser_host(parts.hostname)
    if host is None:
        return (
            f"ALLOWED_ORIGINS entry {origin!r} has a host browsers never send: use the host's ASCII name "
            f"(punycode for an international one) or its IP address; {fix}"
        )
    spelled = _browser_origin(parts, host)
    if spelled != origin:
        return f"ALLOWED_ORIGINS entry {origin!r} is not written as browsers send it: use {spelled}"
    return None


def _browser_host(hostname: str) -> str | None:
    """`hostname` (lower-cased by urlsplit) as a browser writes it in an origin, or None if it cannot be one."""
    if ":" in hostname:
        try:
            return f"[{ipaddress.IPv6Address(hostname).compressed}]"
        except ValueError:
            return None
    if _NUMERIC_LAST_LABEL.fullmatch(hostname):
        # Sent dotted-quad whatever the spelling (127.1 arrives as 127.0.0.1), or not at all (foo.123).
        try:
            return str(ipaddress.IPv4Address(hostname))
        except ValueError:
            return None
    return hostname if _HOST_NAME.fullmatch(hostname) else None


def _browser_origin(parts: SplitResult, host: str) -> str:
    port = "" if parts.port in (None, _DEFAULT_PORTS[parts.scheme]) else f":{parts.port}"
    return f"{parts.scheme}://{host}{port}"
