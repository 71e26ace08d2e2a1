"""Properties of origin parsing (doki.origins, and ALLOWED_ORIGINS in the settings) over generated origins.

CORS compares the browser's `Origin` header with each allowed origin as strings, so an allowed origin is only of
use if it is spelled exactly as browsers send it: lower-case scheme and host, no default port, no path, query,
fragment or credentials. Anything else must be refused with a message that names the entry, or it would be
accepted and never match.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from doki.origins import origin_problem
from doki.settings import url_origin
from tests.doki.conftest import production_settings

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)
DEFAULT_PORTS = {"http": 80, "https": 443}

_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
# A host name's last label is never a number: a browser would read the host as an IPv4 address.
_hostnames = st.builds(
    lambda labels, last: ".".join([*labels, last]),
    st.lists(_label, max_size=3),
    _label.filter(lambda label: not label.isdigit() and not label.startswith("0x")),
)
_ipv4 = st.ip_addresses(v=4).map(str)
_ipv6 = st.ip_addresses(v=6).map(lambda address: f"[{address.compressed}]")


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int | None

    @property
    def port_part(self) -> str:
        return f":{self.port}" if self.port is not None else ""

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}{self.port_part}"


@st.composite
def origins(draw: st.DrawFn) -> Origin:
    """An origin as a browser serializes it into the `Origin` header."""
    scheme = draw(st.sampled_from(["http", "https"]))
    host = draw(st.one_of(_hostnames, _ipv4, _ipv6))
    port = draw(st.none() | st.integers(1, 65535).filter(lambda p: p != DEFAULT_PORTS[scheme]))
    return Origin(scheme, host, port)


@PROPERTY
@given(origin=origins())
def test_every_origin_a_browser_sends_is_accepted_as_written(origin: Origin) -> None:
    assert origin_problem(str(origin)) is None
    assert url_origin(str(origin)) == str(origin)


@PROPERTY
@given(allowed=st.lists(origins().map(str), min_size=1, max_size=5, unique=True), padding=st.sampled_from(["", " "]))
def test_allowed_origins_parse_back_to_the_same_list(allowed: list[str], padding: str) -> None:
    written = ",".join(f"{padding}{origin}{padding}" for origin in allowed)

    app_settings = production_settings("https://abc.supabase.co", allowed_origins=written)

    assert app_settings.allowed_origins == allowed
    assert not [p for p in app_settings.problems() if "ALLOWED_ORIGINS" in p]


def _misspellings(origin: Origin) -> list[str]:
    """Ways to write `origin` that a browser never sends."""
    scheme, host, port = origin.scheme, origin.host, origin.port_part
    written = [
        f"{scheme.upper()}://{host}{port}",
        f"{origin}/",
        f"{origin}/app",
        f"{origin}?",
        f"{origin}?next=/",
        f"{origin}#",
        f"{origin}#top",
        f"{scheme}://user@{host}{port}",
        f"{scheme}://{host[:1]} {host[1:]}{port}",
        f"{scheme}://{host[:1]}\t{host[1:]}{port}",
        f" {origin}\n",
        f"ws://{host}{port}",
        f"{scheme}:/{host}{port}",
    ]
    if any(c.isalpha() for c in host):
        written.append(f"{scheme}://{host.upper()}{port}")
    if origin.port is None:
        written += [f"{origin}:{DEFAULT_PORTS[scheme]}", f"{origin}:"]
    return written


@PROPERTY
@given(data=st.data(), origin=origins())
def test_an_origin_written_otherwise_is_refused_naming_the_entry(data: st.DataObject, origin: Origin) -> None:
    written = data.draw(st.sampled_from(_misspellings(origin)), label="written")

    problem = origin_problem(written)

    assert problem is not None, f"{written!r} is accepted, but no browser sends it"
    assert repr(written) in problem


@PROPERTY
@given(text=st.text(max_size=60) | st.builds("{}://{}".format, st.sampled_from(["http", "https"]), st.text()))
def test_whatever_is_accepted_is_spelled_as_browsers_send_it(text: str) -> None:
    # Never an exception: ALLOWED_ORIGINS is typed by people, and `doki cors` takes it from the command line.
    problem = origin_problem(text)

    if problem is None:
        assert url_origin(text) == text
        assert text.isascii() and text == text.lower()


def test_an_ipv6_origin_is_accepted_only_compressed() -> None:
    spelled = f"http://[{ipaddress.IPv6Address('::1').exploded}]:8080"

    assert origin_problem(spelled) is not None
    assert origin_problem("http://[::1]:8080") is None
