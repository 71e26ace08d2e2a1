"""Whether the DNS records a domain mapping asks for resolve yet, as the resolver of this machine sees them.

A CNAME shows as the canonical name the domain resolves through (`ghs.googlehosted.com`); A and AAAA records as the
addresses it resolves to. What a resolver caches may lag behind what the DNS provider holds: "not found yet" is
worth another look later, not a failure.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from doki_cli.model import DnsRecord


@dataclass(frozen=True)
class Resolved:
    canonical: str  # the name it resolves through, when that is another name (a CNAME); "" otherwise
    addresses: frozenset[str]


@dataclass(frozen=True)
class Seen:
    record: DnsRecord
    found: bool
    resolves_to: str  # what the domain resolves to now, as people read it


def resolve(name: str) -> Resolved:
    """`name` through this machine's resolver; nothing at all when it does not resolve."""
    try:
        canonical, _, v4 = socket.gethostbyname_ex(name)
    except OSError:
        canonical, v4 = name, []
    try:
        v6 = {str(info[4][0]) for info in socket.getaddrinfo(name, None, socket.AF_INET6)}
    except OSError:
        v6 = set()
    other = canonical.rstrip(".").lower()
    return Resolved(other if other != name.lower() else "", frozenset(v4) | frozenset(v6))


def check(domain: str, records: tuple[DnsRecord, ...], resolved: Resolved) -> list[Seen]:
    """Each record of `domain`, found or not in what `domain` resolves to."""
    now = resolved.canonical or ", ".join(sorted(resolved.addresses)) or "nothing (it does not resolve)"
    seen = []
    for record in records:
        if record.type == "CNAME":
            found = resolved.canonical == record.data.rstrip(".").lower()
        else:
            found = record.data in resolved.addresses
        seen.append(Seen(record, found, now))
    return seen
