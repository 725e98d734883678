"""The live view's fan-out between processes of one data directory (bus/live_local.py): leases
and entries reach the peers, and only a dead peer's socket file is ever removed."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from eventrelay.bus.live_local import UnixLiveFanout
from tests.support.live import eventually


async def test_peers_exchange_leases_and_the_entries_of_sources_they_follow(tmp_path: Path) -> None:
    got: dict[str, list[tuple[str, bytes]]] = {"a": [], "b": []}
    a, b = UnixLiveFanout(tmp_path), UnixLiveFanout(tmp_path)
    await a.start(lambda p: got["a"].append(("watch", p)), lambda s, p: got["a"].append((s, p)))
    await b.start(lambda p: got["b"].append(("watch", p)), lambda s, p: got["b"].append((s, p)))
    try:
        await b.listen("src_1")
        await a.announce(b'{"q":1}')
        for i in range(50):  # a burst, more than a datagram queue would hold
            await a.publish("src_1", b'{"n":%d}' % i)
        await a.publish("src_2", b'{"not":"followed"}')
        await eventually(lambda: len(got["b"]) == 51)
        assert got["b"][0] == ("watch", b'{"q":1}')
        assert [p for s, p in got["b"][1:]] == [b'{"n":%d}' % i for i in range(50)]
        assert got["a"] == []  # nothing comes back to the sender
    finally:
        await a.close()
        await b.close()
    assert list(tmp_path.glob("live-*.sock")) == []


async def test_a_data_directory_deeper_than_a_socket_path_may_be(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)  # over the 108 bytes a socket path holds
    got: list[tuple[str, bytes]] = []
    a, b = UnixLiveFanout(deep), UnixLiveFanout(deep)
    await a.start(lambda _p: None, lambda _s, _p: None)
    await b.start(lambda _p: None, lambda s, p: got.append((s, p)))
    try:
        await b.listen("src_1")
        await a.publish("src_1", b'{"n":1}')
        await eventually(lambda: got == [("src_1", b'{"n":1}')])
    finally:
        await a.close()
        await b.close()
    assert list(deep.glob("live-*.sock")) == []


async def test_a_refused_peer_is_forgotten_only_when_its_process_is_gone(tmp_path: Path) -> None:
    def not_listening(name: str) -> tuple[socket.socket, Path]:
        path = tmp_path / name
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))  # bound, not (yet) listening: connections are refused
        return sock, path

    starting, starting_path = not_listening(f"live-{os.getpid()}-aaaaaa.sock")
    dead, dead_path = not_listening("live-999999999-bbbbbb.sock")
    fanout = UnixLiveFanout(tmp_path)
    await fanout.start(lambda _p: None, lambda _s, _p: None)
    try:
        await fanout.announce(b'{"q":1}')
        assert starting_path.exists()  # its process lives: maybe between bind() and listen()
        assert not dead_path.exists()
    finally:
        await fanout.close()
        starting.close()
        dead.close()
