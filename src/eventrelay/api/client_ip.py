"""The client's address for `context.ip`, and the scheme/host it reached us at.

Without trusted proxies (`EVENTRELAY_TRUSTED_PROXIES` empty, the default) the TCP peer is the
client and forwarding headers are ignored: anyone can write them. When the peer is a trusted
proxy, the client is the rightmost address of `X-Forwarded-For` (or, without it, of the
`Forwarded` header's `for=` parameters, RFC 7239) that is not itself a trusted proxy: every hop
appends the address it received from, so addresses left of the first untrusted one are
whatever the client chose to send. An unparseable hop ends the search (no address is given
rather than a made-up one).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from ipaddress import ip_address

from starlette.types import Scope

from eventrelay.settings import Network

_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def _host_of(hop: str) -> str | None:
    """An address from a forwarding hop: strips quotes, ports and IPv6 brackets."""
    text = hop.strip().strip('"')
    if text.startswith("["):
        end = text.find("]")
        text = text[1:end] if end > 0 else ""
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.split(":", 1)[0]
    try:
        return str(ip_address(text))
    except ValueError:
        return None


def _headers(scope: Scope, name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in scope["headers"] if k == name]


def _forwarded_hops(scope: Scope) -> list[str]:
    xff = _headers(scope, b"x-forwarded-for")
    if xff:
        return [hop for value in xff for hop in value.split(",") if hop.strip()]
    hops: list[str] = []
    for value in _headers(scope, b"forwarded"):
        for element in value.split(","):
            for pair in element.split(";"):
                key, _, val = pair.strip().partition("=")
                if key.lower() == "for" and val:
                    hops.append(val)
    return hops


class ClientAddress:
    def __init__(self, trusted: Sequence[Network]) -> None:
        self._trusted = tuple(trusted)

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._trusted)

    def _peer(self, scope: Scope) -> str | None:
        client = scope.get("client")
        return str(client[0]) if client else None

    def behind_proxy(self, scope: Scope) -> bool:
        peer = self._peer(scope)
        return bool(self._trusted) and peer is not None and self._is_trusted(peer)

    def of(self, scope: Scope) -> str | None:
        peer = self._peer(scope)
        if not self._trusted or peer is None or not self._is_trusted(peer):
            return peer
        hops = _forwarded_hops(scope)
        if not hops:
            return peer
        for hop in reversed(hops):
            address = _host_of(hop)
            if address is None:
                return None
            if not self._is_trusted(address):
                return address
        return _host_of(hops[0])

    def origin(self, scope: Scope, host_header: bytes | None) -> str:
        """`scheme://host` the client used: the request's, or a trusted proxy's
        X-Forwarded-Proto / X-Forwarded-Host."""
        scheme = str(scope.get("scheme", "http"))
        host = host_header.decode("latin-1") if host_header else ""
        if self.behind_proxy(scope):
            proto = _headers(scope, b"x-forwarded-proto")
            if proto and proto[0].split(",")[0].strip() in ("http", "https"):
                scheme = proto[0].split(",")[0].strip()
            forwarded_host = _headers(scope, b"x-forwarded-host")
            if forwarded_host:
                host = forwarded_host[0].split(",")[0].strip()
        if not _HOST.match(host):
            server = scope.get("server")
            host = f"{server[0]}:{server[1]}" if server else "localhost"
        return f"{scheme}://{host}"
