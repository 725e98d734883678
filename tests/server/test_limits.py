"""The HTTP server's limits against a real `eventrelay serve`, over real sockets (issue 9.8).

Nothing here measures time: short timeouts are configured and each test waits (with a generous
socket timeout) for what the server must eventually do.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.process import Server, eventrelay_process

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("server-limits")]

SHORT = {
    "EVENTRELAY_HEADER_TIMEOUT_SECONDS": "1",
    "EVENTRELAY_BODY_TIMEOUT_SECONDS": "1",
    "EVENTRELAY_KEEPALIVE_TIMEOUT_SECONDS": "1",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Started as most Linux systems start a service: 1,024 open files (soft limit).
    with eventrelay_process(tmp_path_factory.mktemp("limits"), env=SHORT, open_files=1024) as s:
        yield s


def _address(server: Server) -> tuple[str, int]:
    host, port = server.base_url.removeprefix("http://").split(":")
    return host, int(port)


@contextmanager
def connection(server: Server) -> Iterator[socket.socket]:
    sock = socket.create_connection(_address(server), timeout=15)
    try:
        yield sock
    finally:
        sock.close()


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (socket timeout: fail)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


def healthz(server: Server) -> int:
    return httpx.get(f"{server.base_url}/healthz", timeout=10).status_code


def test_oversized_headers_are_431_without_reading_them(server: Server) -> None:
    """Unfinished headers far past the limit (the attack sent 64 MB per connection): refused
    once the limit is passed, so the server never holds more than about the limit."""
    for _ in range(8):
        with connection(server) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            sent = 0
            try:
                while sent < 8 * 1024 * 1024:
                    sock.sendall(b"X-Filler: " + b"a" * 16_000 + b"\r\n")
                    sent += 16_012
            except (BrokenPipeError, ConnectionResetError):
                pass
            response = read_until_closed(sock)
            assert status_of(response) == 431, response[:200]
            assert b'"code":"headers_too_large"' in response
            assert sent < 8 * 1024 * 1024  # the server closed long before 8 MB
    assert healthz(server) == 200


def test_headers_within_the_limit_are_served(server: Server) -> None:
    headers = {f"x-h{i}": "v" * 1000 for i in range(25)}  # 25 KB of headers: under 32 KB
    assert httpx.get(f"{server.base_url}/healthz", headers=headers).status_code == 200


def test_overlong_request_line_is_414(server: Server) -> None:
    with connection(server) as sock:
        sock.sendall(b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        response = read_until_closed(sock)
    assert status_of(response) == 414


def test_slow_headers_are_cut_off_with_408(server: Server) -> None:
    """Slowloris: a byte now and then, never finishing the headers."""
    with connection(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        try:
            for _ in range(100):  # keeps going far past the header deadline
                sock.sendall(b"X")
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = read_until_closed(sock)
    assert status_of(response) == 408
    assert b'"code":"request_timeout"' in response


def test_slow_body_is_cut_off(server: Server) -> None:
    write_key = _write_key(server)
    import base64

    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    with connection(server) as sock:
        sock.sendall(
            b"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Basic " + auth.encode() + b"\r\nContent-Length: 1000\r\n\r\n{"
        )
        try:
            for _ in range(100):
                sock.sendall(b" ")
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = read_until_closed(sock)
    assert status_of(response) == 408


def test_idle_connections_are_closed(server: Server) -> None:
    with connection(server) as sock:  # never sends anything
        assert read_until_closed(sock) == b""
    with connection(server) as sock:  # one request, then nothing: keep-alive ends
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        response = read_until_closed(sock)
    assert status_of(response) == 200


def test_healthz_answers_with_1100_idle_connections_open(server: Server) -> None:
    with ExitStack() as stack:
        for _ in range(1100):
            stack.enter_context(connection(server))
        assert healthz(server) == 200
        assert healthz(server) == 200


def test_connection_cap_evicts_idle_connections_first(tmp_path: Path) -> None:
    env = {"EVENTRELAY_MAX_CONNECTIONS": "20", "EVENTRELAY_KEEPALIVE_TIMEOUT_SECONDS": "60"}
    with eventrelay_process(tmp_path, env=env) as server, ExitStack() as stack:
        idle = [stack.enter_context(connection(server)) for _ in range(30)]
        # The oldest idle ones made room for the newer ones; health checks still get in.
        assert healthz(server) == 200
        assert read_until_closed(idle[0]) == b""
        # Connections busy with a request (head in progress) are never evicted: once all
        # are busy, a new connection is refused with 503.
        busy = [stack.enter_context(connection(server)) for _ in range(20)]
        for sock in busy:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        with connection(server) as extra:
            response = read_until_closed(extra)
        assert status_of(response) == 503
        assert b"retry-after: 1" in response
        for sock in busy:
            sock.sendall(b"Host: x\r\n\r\n")
            assert status_of(sock.recv(1000)) == 200


def _write_key(server: Server) -> str:
    token = (server.cwd / ".eventrelay" / "owner-token").read_text().strip()
    r = httpx.post(
        f"{server.base_url}/v1/admin/sources",
        json={"name": "limits"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["write_key"])
