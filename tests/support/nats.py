"""A real nats-server with JetStream, started by the tests on a free port with its own store."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.server import free_port
from tests.support.services import require

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def require_nats_binary() -> None:
    require(
        Path(NATS_SERVER).exists(),
        "nats-server",
        "install it (Debian: apt-get install nats-server) to run the JetStream tests",
    )


class NatsServer:
    def __init__(self, store: Path, port: int | None = None) -> None:
        self.store = store
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> NatsServer:
        self.store.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@contextmanager
def nats_server(store: Path) -> Iterator[NatsServer]:
    require_nats_binary()
    server = NatsServer(store).start()
    try:
        yield server
    finally:
        server.stop()
