"""Where to open a server bound to every interface (``0.0.0.0``, ``::``): this machine's own addresses,
as the start-up line lists them (``http://0.0.0.0:8080/`` is not an address a browser can open).

Read from the interfaces with the standard library on Linux, plus the address the routing table
would send from (a UDP ``connect`` sends no packet) and what the host name resolves to.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import socket
import struct

SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address
IF_INET6 = "/proc/net/if_inet6"  # Linux: every IPv6 address, one per line
# documentation addresses (RFC 5737, RFC 3849): only the route towards them is looked up
ROUTE_PROBES = {socket.AF_INET: "198.51.100.1", socket.AF_INET6: "2001:db8::1"}
# a server on "::" takes IPv4 too (Linux's default: IPV6_V6ONLY off)
EVERY_INTERFACE = {"0.0.0.0": [socket.AF_INET], "::": [socket.AF_INET, socket.AF_INET6]}
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_unspecified(host: str) -> bool:
    """Whether a server on ``host`` listens on every interface."""
    return host in EVERY_INTERFACE


def addresses_to_open(host: str) -> list[str]:
    """This machine's non-loopback, non-link-local addresses a server on ``host`` answers on (IPv4
    first); empty when ``host`` is a single address, which is already the one to open."""
    families = EVERY_INTERFACE.get(host, [])
    found: dict[Address, None] = {}  # ordered, without repeats
    for family in families:
        for text in [*_interfaces(family), _routed(family), *_host_name(family)]:
            with contextlib.suppress(ValueError):
                address = ipaddress.ip_address(text.split("%")[0])
                if not (address.is_loopback or address.is_link_local or address.is_unspecified):
                    found[address] = None
    return [str(address) for address in sorted(found, key=lambda a: (a.version, a))]


def _interfaces(family: socket.AddressFamily) -> list[str]:
    return _ipv6_addresses() if family == socket.AF_INET6 else _ipv4_addresses()


def _ipv6_addresses() -> list[str]:
    try:
        with open(IF_INET6, encoding="ascii") as table:
            rows = [line.split()[0] for line in table if line.strip()]
    except OSError:
        return []
    # each row is 32 hex digits without colons
    return [":".join(row[i : i + 4] for i in range(0, 32, 4)) for row in rows]


def _ipv4_addresses() -> list[str]:
    found: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            with contextlib.suppress(OSError):  # an interface without an IPv4 address
                answer = fcntl.ioctl(probe.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
                found.append(socket.inet_ntoa(answer[20:24]))
    return found


def _routed(family: socket.AddressFamily) -> str:
    """The source address of the default route ("" without one)."""
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((ROUTE_PROBES[family], 9))
        except OSError:
            return ""
        return str(probe.getsockname()[0])


def _host_name(family: socket.AddressFamily) -> list[str]:
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, family, socket.SOCK_STREAM)
    except OSError:
        return []
    return [str(info[4][0]) for info in infos]
