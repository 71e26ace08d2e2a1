"""Which IP addresses a user's URL may make this server connect to: the public internet's, judged by what they reach.

`ipaddress`'s flags alone are not the judgement. Python 3.11 calls multicast addresses (224.0.0.1, ff02::1) global,
and IPv6 forms that carry an IPv4 address are judged as IPv6: `::10.0.0.1` (IPv4-compatible, RFC 4291 §2.5.5.1) and
`64:ff9b::a00:1` (NAT64 of 10.0.0.1, RFC 6052) are "global", while `::ffff:8.8.8.8` (IPv4-mapped) is "reserved". A
connection to such a form reaches the IPv4 address it carries (a dual-stack socket, a NAT64 translator), so that
address is the one judged.

Two tunnels are refused whatever they carry: no Supabase project is served from one, and a connection to one goes
through relays this server does not choose. Teredo (`2001::/32`, RFC 4380) tunnels IPv6 through IPv4 NATs to hosts
that have no IPv6 of their own. 6to4 (`2002::/16`, RFC 3056) reaches an IPv4 host through 6to4 relays, and the
anycast relays it relies on are deprecated (RFC 7526, which moved RFC 3068's relay prefix `192.88.99.0/24` to
Historic; RFC 6343 advises disabling 6to4 by default); that relay prefix is refused too, though Python calls it global.

No DNS here: names are resolved by the caller, once, and every address it got is judged (see
doki.connectors.checked_transport, which then connects to an address judged here).
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # RFC 4291 §2.5.5.1, deprecated; `::` and `::1` are not one
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # RFC 2765 (SIIT)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 §2.1, the well-known prefix
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: a network's own translator, prefix length unknown
_TEREDO = ipaddress.IPv6Network("2001::/32")  # RFC 4380; IANA's IPv6 special-purpose registry, "TEREDO"
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")  # RFC 3056
_SIX_TO_FOUR_RELAYS = ipaddress.IPv4Network("192.88.99.0/24")  # RFC 3068, obsoleted by RFC 7526


def parse_address(text: str) -> IPAddress | None:
    """`text` as an IP address (an IPv6 zone index dropped), or None when it is not one."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def carried(address: IPAddress) -> tuple[str | None, list[IPAddress]]:
    """(the form's name, the IPv4 addresses a connection to `address` reaches) for an IPv6 form that embeds IPv4 and
    is judged by it; (None, [address]) for any other address. Teredo and 6to4 are not among them: they are refused
    whatever they carry (`address_refusal`)."""
    if isinstance(address, ipaddress.IPv4Address):
        return None, [address]
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", [address.ipv4_mapped]
    low = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _NAT64:
        return "NAT64", [low]
    if address in _IPV4_TRANSLATED:
        return "IPv4-translated", [low]
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        return "IPv4-compatible", [low]
    return None, [address]


def address_refusal(address: IPAddress, *, allow_loopback: bool) -> str | None:
    """Why this server must not connect to `address` with a user's key, or None when it may: the address a
    connection reaches must be on the public internet (loopback allowed only when `allow_loopback`)."""
    if address in _NAT64_LOCAL:
        return "a local-use NAT64 address (RFC 8215), translated inside the network"
    if address in _TEREDO:
        return "a Teredo tunnel address (RFC 4380), which no Supabase project is served from"
    if address in _SIX_TO_FOUR:
        return (
            "a 6to4 tunnel address (RFC 3056; RFC 7526 deprecates its relays), which no Supabase project is served from"
        )
    form, targets = carried(address)
    for target in targets:
        reason = _refusal(target, allow_loopback=allow_loopback and form in (None, "IPv4-mapped"))
        if reason is not None:
            return reason if form is None else f"the {form} form of {target}, {reason}"
    return None


def _refusal(address: IPAddress, *, allow_loopback: bool) -> str | None:
    if address.is_loopback:
        return None if allow_loopback else "a loopback address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address in _SIX_TO_FOUR_RELAYS:
        return "a 6to4 relay anycast address (RFC 3068, deprecated by RFC 7526)"
    if address.is_link_local:
        return "a link-local address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "an address outside the public internet"
    return None
