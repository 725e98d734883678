"""The live view's fan-out between the processes of one embedded installation
(`serve --processes N` shares one data directory): Unix stream sockets next to the queue.

Each process listens on `<data dir>/live-<pid>-<random>.sock`; the socket files are the list of
peers. A lease or an entry goes to every peer (a handful at most: the processes of one
machine) over a connection kept open, and each peer keeps what concerns its own listeners. A
peer that died leaves its socket file behind: it is removed when a connection is refused and
no process has that pid (a refusal alone may be a peer between bind() and listen()). Writing never waits: a peer more than `MAX_BUFFERED` bytes behind misses
entries (the view samples anyway).

Stream rather than datagram sockets: Linux queues at most `net.unix.max_dgram_qlen` datagrams
(10 by default) per receiving socket, so a burst of entries would be dropped while the
receiving process is busy; a stream has the socket buffer and the sender's transport buffer.

A data directory deeper than a socket path may be (108 bytes on Linux) is reached through
`/proc/self/fd/<descriptor of the directory>/`, which is short whatever the directory's path.

Frames: a 4-byte big-endian length, then `W<lease JSON>` or `E<source id>\\n<entry>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from pathlib import Path

from eventrelay.bus.live import OnEvents, OnWatch

log = logging.getLogger("eventrelay.live")

_PATH_MAX = 100  # sun_path holds 108 bytes on Linux, 104 on macOS
MAX_FRAME = 4 * 1024 * 1024
MAX_BUFFERED = 1024 * 1024


class UnixLiveFanout:
    def __init__(self, directory: Path) -> None:
        self._dir = directory
        # pid plus a random part: unique even for two runtimes in one process (tests).
        self._path = directory / f"live-{os.getpid()}-{secrets.token_hex(3)}.sock"
        self._server: asyncio.Server | None = None
        self._peers: dict[Path, asyncio.StreamWriter] = {}
        self._incoming: set[asyncio.StreamWriter] = set()
        self._listening: set[str] = set()
        self._on_watch: OnWatch | None = None
        self._on_events: OnEvents | None = None
        self._dir_fd: int | None = None  # for socket paths too long to name directly

    @property
    def connected(self) -> bool:
        return self._server is not None

    async def start(self, on_watch: OnWatch, on_events: OnEvents) -> None:
        self._on_watch, self._on_events = on_watch, on_events
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if len(str(self._path)) > _PATH_MAX:
            if not os.path.isdir("/proc/self/fd"):  # noqa: ASYNC240 - one stat at start
                raise OSError(f"socket path too long for this system: {self._path}")
            self._dir_fd = os.open(self._dir, os.O_PATH | os.O_DIRECTORY)
        self._server = await asyncio.start_unix_server(self._serve, path=self._address(self._path))
        os.chmod(self._path, 0o600)

    def _address(self, path: Path) -> str:
        if self._dir_fd is None:
            return str(path)
        return f"/proc/self/fd/{self._dir_fd}/{path.name}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None
        for writer in [*self._peers.values(), *self._incoming]:
            writer.close()
        self._peers.clear()
        self._incoming.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._incoming.add(writer)
        try:
            while True:
                size = int.from_bytes(await reader.readexactly(4), "big")
                if size > MAX_FRAME:
                    return
                self._received(await reader.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the peer went away
        finally:
            self._incoming.discard(writer)
            writer.close()

    def _received(self, frame: bytes) -> None:
        if frame[:1] == b"W" and self._on_watch is not None:
            self._on_watch(frame[1:])
        elif frame[:1] == b"E" and self._on_events is not None:
            source, _, payload = frame[1:].partition(b"\n")
            source_id = source.decode(errors="replace")
            if source_id in self._listening:
                self._on_events(source_id, payload)

    async def _peer(self, path: Path) -> asyncio.StreamWriter | None:
        writer = self._peers.get(path)
        if writer is not None and not writer.is_closing():
            return writer
        try:
            _, writer = await asyncio.open_unix_connection(self._address(path))
        except ConnectionRefusedError:
            # Refused: its process is gone, or is between bind() and listen() as it starts.
            # Only a file whose process no longer exists is removed.
            if not _alive(path):
                _remove(path)
            return None
        except OSError:
            return None
        self._peers[path] = writer
        return writer

    async def _send(self, frame: bytes) -> None:
        if self._server is None:
            return
        data = len(frame).to_bytes(4, "big") + frame
        for path in self._dir.glob("live-*.sock"):
            if path == self._path:
                continue
            writer = await self._peer(path)
            if writer is not None and writer.transport.get_write_buffer_size() < MAX_BUFFERED:
                writer.write(data)

    async def announce(self, payload: bytes) -> None:
        await self._send(b"W" + payload)

    async def publish(self, source_id: str, payload: bytes) -> None:
        await self._send(b"E" + source_id.encode() + b"\n" + payload)

    async def listen(self, source_id: str) -> None:
        self._listening.add(source_id)

    async def unlisten(self, source_id: str) -> None:
        self._listening.discard(source_id)


def _alive(path: Path) -> bool:
    """Whether the process named in `live-<pid>-<random>.sock` exists."""
    try:
        pid = int(path.name.split("-")[1])
        os.kill(pid, 0)
    except (IndexError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _remove(path: Path) -> None:
    # A local metadata operation on a socket file: too small to hand to a thread.
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
