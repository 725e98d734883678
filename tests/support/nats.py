"""Real nats-servers with JetStream, started by the tests on free ports with their own stores:
one server, or a cluster of three (routes between them, a JetStream meta leader elected before
anyone uses it)."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.request import urlopen

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
    def __init__(
        self,
        store: Path,
        port: int | None = None,
        name: str | None = None,
        cluster: tuple[int, list[int]] | None = None,  # (own route port, all route ports)
    ) -> None:
        self.store = store
        self.port = port or free_port()
        self.name = name or f"n{self.port}"
        self.monitor_port = free_port()
        self._cluster = cluster
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _args(self) -> list[str]:
        args = [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-n", self.name]
        args += ["-m", str(self.monitor_port), "-js", "-sd", str(self.store)]
        if self._cluster is not None:
            own, every = self._cluster
            routes = ",".join(f"nats://127.0.0.1:{p}" for p in every if p != own)
            args += ["--cluster_name", "er", "--cluster", f"nats://127.0.0.1:{own}"]
            args += ["--routes", routes]
        return args

    def start(self) -> NatsServer:
        self.store.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            self._args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: a node lost without a goodbye."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def monitor(self, path: str) -> dict[str, object]:
        with urlopen(f"http://127.0.0.1:{self.monitor_port}{path}", timeout=2) as r:
            return dict(json.loads(r.read()))


class NatsCluster:
    """Three nats-servers routed into one JetStream cluster (R3 streams keep working when any
    one is lost). `url` lists every server, as a scale-out deployment configures it."""

    def __init__(self, root: Path, size: int = 3) -> None:
        routes = [free_port() for _ in range(size)]
        self.nodes = [
            NatsServer(root / f"n{i}", name=f"n{i}", cluster=(routes[i], routes))
            for i in range(size)
        ]

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def node(self, name: str) -> NatsServer:
        return next(n for n in self.nodes if n.name == name)

    def start(self) -> NatsCluster:
        for node in self.nodes:
            if not node.running:
                node.start()
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        """Until every running node knows the JetStream meta leader (streams can be created)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._knows_leader(n) for n in self.nodes if n.running):
                return
            time.sleep(0.1)
        raise RuntimeError("the JetStream cluster elected no meta leader")

    @staticmethod
    def _knows_leader(node: NatsServer) -> bool:
        try:
            meta = node.monitor("/jsz").get("meta_cluster")
        except OSError:
            return False
        return isinstance(meta, dict) and bool(meta.get("leader"))

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@contextmanager
def nats_server(store: Path) -> Iterator[NatsServer]:
    require_nats_binary()
    server = NatsServer(store).start()
    try:
        yield server
    finally:
        server.stop()
