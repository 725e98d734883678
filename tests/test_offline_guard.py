"""The suite stays on this machine (issue 9.12): the guard catches lookups of non-local names
and connections to non-local addresses, and tests that need public-looking names inject a
resolver into the runtime instead of asking DNS."""

from __future__ import annotations

import asyncio
import socket

import pytest

from eventrelay.delivery.sender import HttpSender, TransportError
from eventrelay.destinations.base import HttpRequest
from eventrelay.settings import Settings
from tests.support.api import running_api
from tests.support.offline import OfflineGuard, offline
from tests.support.sink import Sink


def fake_dns(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"{host} does not resolve")
        return table[host]

    return resolve


async def test_the_guard_records_non_local_lookups_and_connections() -> None:
    guard = OfflineGuard()
    with offline(guard):
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("api.example.com", 443)
        with pytest.raises(socket.gaierror):
            await asyncio.get_running_loop().getaddrinfo("cdn.example.org", 443)
        # .invalid names never exist (RFC 2606): answered at once, not recorded.
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("hooks.example.invalid", 443)
        assert socket.getaddrinfo("localhost", 80)
        assert socket.getaddrinfo("127.0.0.1", 80)
        with socket.socket() as s, pytest.raises(ConnectionRefusedError):
            s.connect(("192.0.2.10", 80))
        found = guard.take()
    assert found == ["api.example.com", "cdn.example.org", "connect ('192.0.2.10', 80)"]


async def test_saving_a_config_uses_the_injected_resolver(settings: Settings) -> None:
    """The SSRF check at save time, with public-looking names and no DNS."""
    strict = settings.model_copy(update={"allow_private_targets": False})
    async with running_api(strict) as api:
        api.runtime.resolver = fake_dns(
            {"hooks.example.com": ["10.1.2.3"], "api.example.com": ["93.184.215.14"]}
        )
        source = await api.make_source()

        async def create(url: str) -> int:
            r = await api.post(
                "/v1/admin/integrations",
                json={
                    "source_id": source["id"],
                    "type": "webhook",
                    "name": "x",
                    "config": {"url": url},
                },
            )
            return r.status_code

        assert await create("https://hooks.example.com/x") == 422  # resolves to a private address
        assert await create("https://api.example.com/x") == 201
        assert await create("https://unknown.example.com/x") == 201  # checked again on connect


async def test_the_sender_uses_the_injected_resolver() -> None:
    sink = await Sink().start()
    resolver = fake_dns({"vendor.example.com": ["127.0.0.1"]})
    url = f"http://vendor.example.com:{sink.port}/collect"
    plain = HttpSender(timeout=5, allow_private_targets=True, resolver=resolver)
    guarded = HttpSender(timeout=5, allow_private_targets=False, resolver=resolver)
    await plain.start()
    await guarded.start()
    try:
        assert (await plain.send(HttpRequest("POST", url, {}, b"{}", (0,)))).status == 200
        assert sink.requests[-1].path == "/collect"
        # A user-supplied target resolving to loopback is refused, injected resolver or not.
        with pytest.raises(TransportError) as info:
            await guarded.send(HttpRequest("POST", url, {}, b"{}", (0,), user_target=True))
        assert info.value.reason == "target_refused"
    finally:
        await plain.close()
        await guarded.close()
        await sink.close()
