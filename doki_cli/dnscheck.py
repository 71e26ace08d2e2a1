"""Whether the DNS records a domain mapping asks for resolve yet, as the resolver of this machine sees them.

A CNAME shows as the canonical name the domain resolves through (`ghs.googlehosted.com`); A and AAAA records as the
addresses it resolves to. What a resolver caches may lag behind what the DNS provider holds: "not found yet" is
worth another look later, not a failure.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from doki_cli.model import DnsRecord


@dataclass(frozen=True)
class Resolved:
    canonical: str  # the name it resolves through, when that is another name (a CNAME); "" otherwise
    addresses: frozenset[str]
    names: frozenset[str] = frozenset()  # every name of its CNAME chain (the canonical one among them)


@dataclass(frozen=True)
class Seen:
    record: DnsRecord
    found: bool
    resolves_to: str  # what the domain resolves to now, as people read it


def resolve(name: str) -> Resolved:
    """`name` through this machine's resolver (as an absolute name: no search domain appended); nothing at all when
    it does not resolve."""
    absolute = name.rstrip(".") + "."
    canonical: str = name
    aliases: list[str] = []
    v4: list[str] = []
    # The absolute name first; the name as given for what only the hosts file knows (localhost).
    for asked in (absolute, name):
        try:
            canonical, aliases, v4 = socket.gethostbyname_ex(asked)
            break
        except OSError:
            continue
    try:
        v6 = {str(info[4][0]) for info in socket.getaddrinfo(absolute, None, socket.AF_INET6)}
    except OSError:
        v6 = set()
    other = canonical.rstrip(".").lower()
    chain = frozenset(n.rstrip(".").lower() for n in [canonical, *aliases]) - {name.rstrip(".").lower()}
    return Resolved(other if other != name.rstrip(".").lower() else "", frozenset(v4) | frozenset(v6), chain)


def _address(text: str) -> str:
    """An address in one spelling (IPv6 has several)."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def check(domain: str, records: tuple[DnsRecord, ...], resolved: Resolved) -> list[Seen]:
    """Each record of `domain`, found or not in what `domain` resolves to."""
    now = resolved.canonical or ", ".join(sorted(resolved.addresses)) or "nothing (it does not resolve)"
    seen = []
    for record in records:
        if record.type == "CNAME":
            target = record.data.rstrip(".").lower()
            # The CNAME's target may itself point further: any name of the chain counts.
            found = target == resolved.canonical or target in resolved.names
        else:
            found = _address(record.data) in {_address(address) for address in resolved.addresses}
        seen.append(Seen(record, found, now))
    return seen
