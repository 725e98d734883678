"""Fixtures of the file-loading destination tests: moto (one per test process), a proxy per
test, and a harness running eventrelay in-process with the type pointed at the stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from eventrelay.settings import Settings
from tests.support.pipeline import Pipeline, running_pipeline
from tests.support.s3 import MotoS3, S3Proxy


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoS3]:
    server = MotoS3()
    yield server
    server.stop()


@pytest.fixture
async def warehouse() -> AsyncIterator[str]:
    """A fresh PostgreSQL database playing a Redshift database (dropped afterwards)."""
    import uuid

    import asyncpg

    from tests.support.services import POSTGRES_ADMIN_URL, port_open, require

    require(port_open("127.0.0.1", 5432), "PostgreSQL", "start the local PostgreSQL")
    name = f"er_wh_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    yield name
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def s3proxy(moto: MotoS3) -> AsyncIterator[S3Proxy]:
    proxy = await S3Proxy(moto.url).start()
    yield proxy
    await proxy.close()


def events(count: int, start: int = 0, **fields: Any) -> list[dict[str, Any]]:
    return [
        {
            "type": "track",
            "event": "Order Completed",
            "userId": f"u{n % 97}",
            "messageId": f"msg-{n:06d}",
            "properties": {"order_id": f"O-{n}", "total": n % 1000, "currency": "EUR"},
            **fields,
        }
        for n in range(start, start + count)
    ]


@dataclass
class LoadRun:
    pipe: Pipeline
    source: dict[str, Any]
    integration: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.integration["id"])

    async def send(self, batch: list[dict[str, Any]], size: int = 500) -> None:
        for start in range(0, len(batch), size):
            r = await self.pipe.ingest(
                "/v1/batch", self.source["write_key"], {"batch": batch[start : start + size]}
            )
            assert r.status_code == 200, r.text

    async def status(self) -> dict[str, Any]:
        return await self.pipe.integration(self.id)

    async def wait_status(self, status: str, timeout: float = 20.0) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            current = await self.status()
            return current if current["status"] == status else None

        result: dict[str, Any] = await self.pipe.eventually(check, timeout)
        return result

    async def metrics(self) -> dict[str, Any]:
        return await self.pipe.metrics(self.id)

    async def post(self, what: str, **kw: Any) -> Any:
        return await self.pipe.api.post(f"/v1/admin/integrations/{self.id}/{what}", **kw)


@asynccontextmanager
async def load_run(
    settings: Settings, type_: str, config: dict[str, Any], urls: dict[str, str], **overrides: Any
) -> AsyncIterator[LoadRun]:
    async with running_pipeline(settings, vendor_base_urls=urls, **overrides) as pipe:
        source = await pipe.api.make_source(consent_default="allow")
        integration = await pipe.api.make_integration(source["id"], type=type_, config=config)
        yield LoadRun(pipe, source, integration)
