"""End-to-end harness for the warehouse destinations: eventrelay (in process, either shape, or a
real `eventrelay serve` process for the crash tests) pointed at a warehouse stand-in through
EVENTRELAY_VENDOR_BASE_URLS, and events sent the way SDKs send them."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from eventrelay.settings import Settings
from tests.support.pipeline import Pipeline, running_pipeline

BATCH = 1000  # events per /v1/batch request (the limit is 2,500 and 500 KB)


def events(count: int, tag: str | None = None, **fields: Any) -> list[dict[str, Any]]:
    """`count` Order Completed events with message ids `<tag>-<n>`."""
    tag = tag or uuid.uuid4().hex[:8]
    return [
        {
            "type": "track",
            "event": "Order Completed",
            "userId": f"u{n % 97}",
            "messageId": f"{tag}-{n}",
            "properties": {"order_id": f"O-{n}", "total": n, "currency": "EUR"},
            "context": {"ip": "203.0.113.5", "page": {"url": "https://example.com/"}},
            **fields,
        }
        for n in range(count)
    ]


@dataclass
class WarehouseRun:
    pipe: Pipeline
    source: dict[str, Any]
    integration: dict[str, Any]

    async def send(self, batch: list[dict[str, Any]]) -> None:
        for start in range(0, len(batch), BATCH):
            chunk = batch[start : start + BATCH]
            r = await self.pipe.ingest("/v1/batch", self.source["write_key"], {"batch": chunk})
            assert r.status_code == 200, r.text
            assert r.json().get("accepted", len(chunk)) == len(chunk), r.text

    async def metrics(self) -> dict[str, Any]:
        return await self.pipe.metrics(self.integration["id"])

    async def status(self) -> dict[str, Any]:
        return await self.pipe.integration(self.integration["id"])

    async def wait_status(self, status: str, timeout: float = 30.0) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            current = await self.status()
            return current if current["status"] == status else None

        result: dict[str, Any] = await self.pipe.eventually(check, timeout)
        return result

    async def wait_for(self, check: Callable[[], Any], timeout: float = 60.0) -> Any:
        """Until `check()` (sync, e.g. a count in the warehouse, run in a thread) is truthy."""

        async def poll() -> Any:
            return await asyncio.to_thread(check)

        return await self.pipe.eventually(poll, timeout)

    async def metric(self, name: str, value: int, timeout: float = 10.0) -> dict[str, Any]:
        """The metrics, once the counter `name` has reached `value`."""

        async def check() -> dict[str, Any] | None:
            current = await self.metrics()
            return current if current.get(name) == value else None

        result: dict[str, Any] = await self.pipe.eventually(check, timeout)
        return result

    async def admin(self, action: str, **body: Any) -> httpx.Response:
        path = f"/v1/admin/integrations/{self.integration['id']}/{action}"
        return await self.pipe.api.post(path, json=body or None)


@asynccontextmanager
async def warehouse_run(
    settings: Settings,
    type_: str,
    config: dict[str, Any],
    base_urls: dict[str, str],
    **overrides: Any,
) -> AsyncIterator[WarehouseRun]:
    async with running_pipeline(settings, vendor_base_urls=base_urls, **overrides) as pipe:
        source = await pipe.api.make_source(consent_default="allow")
        integration = await pipe.api.make_integration(source["id"], type=type_, config=config)
        yield WarehouseRun(pipe, source, integration)


def process_env(base_urls: dict[str, str]) -> dict[str, str]:
    """Environment of a real `eventrelay serve` pointed at a stand-in, retrying fast."""
    return {
        "EVENTRELAY_VENDOR_BASE_URLS": json.dumps(base_urls),
        "EVENTRELAY_RETRY_BASE_SECONDS": "0.05",
        "EVENTRELAY_RETRY_CAP_SECONDS": "0.5",
        "EVENTRELAY_LOG_LEVEL": "WARNING",
    }


async def configure(base_url: str, cwd: Path, type_: str, config: dict[str, Any]) -> str:
    """A source and one integration on a running `eventrelay serve`: the source's write key."""
    token = (cwd / ".eventrelay" / "owner-token").read_text().strip()
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as admin:
        r = await admin.post("/v1/admin/sources", json={"name": "w", "consent_default": "allow"})
        assert r.status_code == 201, r.text
        source = r.json()
        body = {"source_id": source["id"], "type": type_, "name": type_, "config": config}
        r = await admin.post("/v1/admin/integrations", json=body)
        assert r.status_code == 201, r.text
    return str(source["write_key"])


async def send_to(base_url: str, write_key: str, batch: list[dict[str, Any]]) -> None:
    async with httpx.AsyncClient(base_url=base_url, auth=(write_key, ""), timeout=30) as client:
        for start in range(0, len(batch), BATCH):
            r = await client.post("/v1/batch", json={"batch": batch[start : start + BATCH]})
            assert r.status_code == 200, r.text


async def until(check: Callable[[], Any], timeout: float = 30.0) -> None:
    """Until `check()` (sync, run in a thread) is truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await asyncio.to_thread(check):
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)
