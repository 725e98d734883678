"""A scale-out deployment made of real processes: API processes (`serve --no-workers`) and
delivery workers (`worker`) sharing a fresh PostgreSQL database and a nats-server of the test's
own (file storage in a temporary directory) or a 3-node JetStream cluster, each process with its
own data directory, as on separate machines.
"""

from __future__ import annotations

import asyncio
import re
import signal
import uuid
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from cryptography.fernet import Fernet

from tests.support.nats import NatsCluster, NatsServer, require_nats_binary
from tests.support.process import Server, eventrelay_process
from tests.support.services import POSTGRES_ADMIN_URL, port_open, require

_SAMPLE = re.compile(r"^eventrelay_delivery_events_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


class Cluster:
    def __init__(
        self,
        root: Path,
        database_url: str,
        env: dict[str, str],
        module: str = "eventrelay",
        nats_nodes: int = 1,
    ) -> None:
        self.root = root
        self.module = module  # what `python -m` runs (a launcher installing a stand-in)
        self.nats: NatsServer | NatsCluster = (
            NatsServer(root / "nats") if nats_nodes == 1 else NatsCluster(root / "nats", nats_nodes)
        )
        self.env = {
            **env,
            "EVENTRELAY_DATABASE_URL": database_url,
            "EVENTRELAY_QUEUE_URL": self.nats.url,
            "EVENTRELAY_SECRET_KEY": Fernet.generate_key().decode(),
        }
        self.apis: list[Server] = []
        self.workers: dict[str, Server] = {}
        self._stack = ExitStack()
        self._count = 0

    def _start(self, name: str, args: tuple[str, ...]) -> Server:
        self._count += 1
        cwd = self.root / f"{name}-{self._count}"
        cwd.mkdir()
        return self._stack.enter_context(
            eventrelay_process(cwd, args, env=self.env, module=self.module)
        )

    def start_api(self) -> Server:
        server = self._start("api", ("serve", "--no-workers"))
        self.apis.append(server)
        return server

    def start_worker(self, name: str) -> Server:
        server = self._start(name, ("worker",))
        self.workers[name] = server
        return server

    def kill_worker(self, name: str) -> None:
        self.workers.pop(name).stop(signal.SIGKILL)

    @property
    def owner_token(self) -> str:
        return (self.apis[0].cwd / ".eventrelay" / "owner-token").read_text().strip()

    def admin(self, api: int = 0) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.apis[api].base_url,
            headers={"Authorization": f"Bearer {self.owner_token}"},
            timeout=10,
        )

    def close(self) -> None:
        self._stack.close()
        self.nats.stop()


async def delivered_by(worker: Server, integration_id: str) -> float:
    """Events this worker process settled as delivered for the integration (its /metrics)."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(worker.base_url + "/metrics")).text
    total = 0.0
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        labels = match["labels"] if match else ""
        if f'integration_id="{integration_id}"' in labels and 'outcome="success' in labels:
            total += float(match["value"]) if match else 0.0
    return total


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    parts = urlsplit(POSTGRES_ADMIN_URL)
    require(
        port_open(parts.hostname or "127.0.0.1", parts.port or 5432),
        "PostgreSQL",
        "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    )
    name = f"eventrelay_cluster_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, "", ""))
    finally:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@asynccontextmanager
async def cluster(
    root: Path,
    env: dict[str, str],
    apis: int,
    workers: int,
    module: str = "eventrelay",
    nats_nodes: int = 1,
) -> AsyncIterator[Cluster]:
    """Start nats-server, then the API processes (the first bootstraps the owner token), then
    the workers, all in parallel threads so the test does not wait on each start in turn."""
    require_nats_binary()
    async with postgres_database() as database_url:
        c = Cluster(root, database_url, env, module, nats_nodes)
        await asyncio.to_thread(c.nats.start)
        try:
            await asyncio.to_thread(c.start_api)
            starts: list[Any] = [asyncio.to_thread(c.start_api) for _ in range(apis - 1)]
            starts += [asyncio.to_thread(c.start_worker, f"w{i + 1}") for i in range(workers)]
            await asyncio.gather(*starts)
            yield c
        finally:
            await asyncio.to_thread(c.close)
