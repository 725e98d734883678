"""End-to-end harness for vendor destinations: eventrelay with the vendor's base URL pointed at
a local stand-in (EVENTRELAY_VENDOR_BASE_URLS), so the test goes through the same code path a
real delivery uses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from eventrelay.settings import Settings
from tests.support.pipeline import Pipeline, running_pipeline
from tests.support.sink import Sink


@dataclass
class VendorRun:
    pipe: Pipeline
    vendor: Sink  # the stand-in: records requests, answers as scripted
    source: dict[str, Any]
    integration: dict[str, Any]

    async def send(self, path: str = "/v1/track", **event: Any) -> None:
        r = await self.pipe.ingest(path, self.source["write_key"], event)
        assert r.status_code == 200, r.text

    async def status(self) -> dict[str, Any]:
        return await self.pipe.integration(self.integration["id"])

    async def wait_status(self, status: str, timeout: float = 10.0) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            current = await self.status()
            return current if current["status"] == status else None

        result: dict[str, Any] = await self.pipe.eventually(check, timeout)
        return result


@asynccontextmanager
async def vendor_run(
    settings: Settings,
    type_: str,
    config: dict[str, Any],
    endpoints: Sequence[str] = (),
    **overrides: Any,
) -> AsyncIterator[VendorRun]:
    """`endpoints` names other vendor endpoints to redirect to the same stand-in (for example
    "oauth" for the token endpoint), as `<type>.<name>` keys."""
    vendor = await Sink().start()
    urls = {type_: vendor.url, **{f"{type_}.{name}": vendor.url for name in endpoints}}
    try:
        async with running_pipeline(settings, vendor_base_urls=urls, **overrides) as pipe:
            source = await pipe.api.make_source(consent_default="allow")
            integration = await pipe.api.make_integration(source["id"], type=type_, config=config)
            yield VendorRun(pipe, vendor, source, integration)
    finally:
        await vendor.close()
