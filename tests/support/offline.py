"""Keep the test suite on this machine: any lookup of a name that is not local, or connection to
an address that is not local, is recorded (and refused, so nothing goes out), and the test that
made it fails.

Every resolution path the code uses ends in `socket.getaddrinfo` (asyncio's default loop and
aiohttp's ThreadedResolver run it in a thread) or in eventrelay's SSRF resolver. uvloop resolves
in C, so in-process servers run on the asyncio loop (tests/support/server.py).

Names under `.invalid` (RFC 2606: guaranteed never to exist) are answered "no such host" without
a query and without failing: tests use them for "a name that does not resolve". A test that needs
a public-looking name to resolve injects a resolver (`Runtime.resolver`).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def is_local(host: Any) -> bool:
    """Loopback and unspecified addresses, localhost names, this machine's own name."""
    if host is None:
        return True  # getaddrinfo(None, port): a local bind address
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    name = str(host).strip("[]").rstrip(".").lower()
    try:
        ip = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return (
            name in _LOCAL_NAMES
            or name.endswith(".localhost")
            or name in (socket.gethostname().lower(), "")
        )
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def is_invalid_tld(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    return isinstance(host, str) and host.rstrip(".").lower().endswith(".invalid")


class OfflineGuard:
    def __init__(self) -> None:
        self.lookups: list[str] = []
        self._lock = threading.Lock()

    def refuse(self, host: Any) -> None:
        """Record a non-local lookup unless it is an `.invalid` name; raise "no such host"."""
        if not is_invalid_tld(host):
            with self._lock:
                self.lookups.append(str(host))
        raise socket.gaierror(socket.EAI_NONAME, "offline test run: name not resolved")

    def refuse_connect(self, address: Any) -> None:
        with self._lock:
            self.lookups.append(f"connect {address!r}")
        raise ConnectionRefusedError("offline test run: connection to a non-local address")

    def take(self) -> list[str]:
        with self._lock:
            found, self.lookups = self.lookups, []
        return found


@contextmanager
def offline(guard: OfflineGuard) -> Iterator[None]:
    """Patch the resolver functions of the socket module for the duration."""
    real_getaddrinfo = socket.getaddrinfo
    real_gethostbyname = socket.gethostbyname
    real_gethostbyname_ex = socket.gethostbyname_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_local(host):
            guard.refuse(host)
        return real_getaddrinfo(host, *args, **kwargs)

    def gethostbyname(host: str) -> str:
        if not is_local(host):
            guard.refuse(host)
        return real_gethostbyname(host)

    def gethostbyname_ex(host: str) -> Any:
        if not is_local(host):
            guard.refuse(host)
        return real_gethostbyname_ex(host)

    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def _check_address(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_local(address[0]):
            guard.refuse_connect(address)

    def connect(self: socket.socket, address: Any) -> None:
        _check_address(self, address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _check_address(self, address)
        return real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.gethostbyname = gethostbyname
    socket.gethostbyname_ex = gethostbyname_ex
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.getaddrinfo = real_getaddrinfo
        socket.gethostbyname = real_gethostbyname
        socket.gethostbyname_ex = real_gethostbyname_ex
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]
