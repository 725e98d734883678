"""The live view's fan-out between the processes of one embedded installation
(`serve --processes N` shares one data directory): Unix datagram sockets next to the queue.

Each process binds `<data dir>/live-<pid>-<random>.sock`; the socket files are the list of peers. A
lease or an entry goes to every peer (a handful at most: the processes of one machine), each of
which keeps what concerns its own listeners. A peer that died leaves its socket file behind:
the first send to it is refused and the file is removed. Sends never block: a peer whose buffer
is full misses that entry (the view samples anyway).

Datagrams: `W<lease JSON>` or `E<source id>\\n<entry or skip notice>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from pathlib import Path
from typing import Any

from eventrelay.bus.live import OnEvents, OnWatch

log = logging.getLogger("eventrelay.live")

_PATH_MAX = 100  # sun_path holds 108 bytes on Linux, 104 on macOS


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, fanout: UnixLiveFanout) -> None:
        self._fanout = fanout

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._fanout.received(data)


class UnixLiveFanout:
    def __init__(self, directory: Path) -> None:
        self._dir = directory
        # pid plus a random part: unique even for two runtimes in one process (tests).
        self._path = directory / f"live-{os.getpid()}-{secrets.token_hex(3)}.sock"
        self._in: asyncio.DatagramTransport | None = None
        self._out: socket.socket | None = None
        self._listening: set[str] = set()
        self._on_watch: OnWatch | None = None
        self._on_events: OnEvents | None = None

    @property
    def connected(self) -> bool:
        return self._in is not None

    async def start(self, on_watch: OnWatch, on_events: OnEvents) -> None:
        if len(str(self._path)) > _PATH_MAX:
            raise OSError(f"socket path too long for this system: {self._path}")
        self._on_watch, self._on_events = on_watch, on_events
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(self._path))
        os.chmod(self._path, 0o600)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        self._in, _ = await loop.create_datagram_endpoint(lambda: _Receiver(self), sock=sock)
        self._out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._out.setblocking(False)

    async def close(self) -> None:
        if self._in is not None:
            self._in.close()
            self._in = None
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
        if self._out is not None:
            self._out.close()
            self._out = None

    def received(self, data: bytes) -> None:
        if data[:1] == b"W" and self._on_watch is not None:
            self._on_watch(data[1:])
        elif data[:1] == b"E" and self._on_events is not None:
            source, _, payload = data[1:].partition(b"\n")
            source_id = source.decode(errors="replace")
            if source_id in self._listening:
                self._on_events(source_id, payload)

    def _send(self, datagram: bytes) -> None:
        if self._out is None:
            return
        for peer in self._dir.glob("live-*.sock"):
            if peer == self._path:
                continue
            try:
                self._out.sendto(datagram, str(peer))
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(FileNotFoundError):
                    peer.unlink()  # its process is gone
            except OSError:
                pass  # the peer's buffer is full, or the entry too large: a sample misses it

    async def announce(self, payload: bytes) -> None:
        self._send(b"W" + payload)

    async def publish(self, source_id: str, payload: bytes) -> None:
        self._send(b"E" + source_id.encode() + b"\n" + payload)

    async def listen(self, source_id: str) -> None:
        self._listening.add(source_id)

    async def unlisten(self, source_id: str) -> None:
        self._listening.discard(source_id)
