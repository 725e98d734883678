"""Wake-ups between processes sharing the embedded queue: publishers in other processes send
the names of the streams they appended to as one Unix datagram to the consumer's socket next to
the file. A lost datagram costs at most the consumer's poll interval."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any


class _WakeProtocol(asyncio.DatagramProtocol):
    def __init__(self, on_wake: Callable[[list[str]], None]) -> None:
        self._on_wake = on_wake

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._on_wake(data.decode(errors="replace").split("\n"))


async def listen(path: Path, on_wake: Callable[[list[str]], None]) -> asyncio.DatagramTransport:
    """The consumer's socket: `on_wake(streams)` for every datagram."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: _WakeProtocol(on_wake), sock=sock
    )
    return transport


class WakeSender:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def send(self, streams: list[str]) -> None:
        # No consumer running, or its socket busy: nothing lost, it polls anyway.
        with contextlib.suppress(OSError):
            self._sock.sendto("\n".join(streams).encode(), str(self._path))

    def close(self) -> None:
        self._sock.close()
