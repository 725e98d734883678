"""SSRF guard for user-supplied targets (webhook URLs).

A target is refused when its host is, or resolves to, a loopback, private, link-local
(cloud metadata 169.254.169.254, fd00:ec2::254), shared (100.64/10), multicast, reserved or
unspecified address. The check runs when the config is saved and again when connecting
(`GuardedResolver`), so a DNS answer that changes later (rebinding) is caught too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

_SHARED = ipaddress.ip_network("100.64.0.0/10")
_EXTRA_BLOCKED = (
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.ip_network("198.18.0.0/15"),  # benchmarking
    ipaddress.ip_network("fd00:ec2::/32"),  # AWS IMDS over IPv6 (inside fc00::/7 already)
)


class TargetRefused(Exception):
    pass


def is_forbidden_ip(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return True
    if any(ip.version == net.version and ip in net for net in _EXTRA_BLOCKED):
        return True
    return bool(
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


async def resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def check_host(
    host: str,
    port: int,
    must_resolve: bool = True,
    resolver: Callable[[str, int], Awaitable[list[str]]] | None = None,
) -> list[str]:
    """The host's addresses, or TargetRefused if any of them is forbidden.

    With `must_resolve=False` (saving a config) a name that does not resolve yet is accepted:
    it is no SSRF risk now, and the connect-time check runs on every delivery.
    """
    try:
        ipaddress.ip_address(host.strip("[]"))
        addresses = [host.strip("[]")]
    except ValueError:
        try:
            addresses = await (resolver or resolve)(host, port)
        except OSError as exc:
            if not must_resolve:
                return []
            raise TargetRefused(f"host {host!r} does not resolve") from exc
    for address in addresses:
        if is_forbidden_ip(address):
            raise TargetRefused(
                f"host {host!r} resolves to {address}, a private, loopback or link-local address;"
                " eventrelay does not send to internal networks"
            )
    return addresses


async def check_url(
    url: str,
    must_resolve: bool = True,
    resolver: Callable[[str, int], Awaitable[list[str]]] | None = None,
) -> None:
    parts = urlsplit(url)
    if not parts.hostname:
        raise TargetRefused("URL has no host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    await check_host(parts.hostname, port, must_resolve, resolver)
