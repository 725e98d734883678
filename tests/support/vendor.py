"""End-to-end harness for vendor destinations: eventrelay with the vendor's base URL pointed at
a local stand-in (EVENTRELAY_VENDOR_BASE_URLS), so the test goes through the same code path a
real delivery uses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from eventrelay.destinations import registry
from eventrelay.destinations.base import BuildContext, BuildResult, EventRecord
from eventrelay.settings import Settings
from eventrelay.timeutil import parse_iso
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

    async def send_batch(self, events: list[dict[str, Any]]) -> None:
        r = await self.pipe.ingest("/v1/batch", self.source["write_key"], {"batch": events})
        assert r.status_code == 200, r.text

    async def metrics(self) -> dict[str, Any]:
        return await self.pipe.metrics(self.integration["id"])

    async def wait_metrics(self, timeout: float = 10.0, **counts: int) -> dict[str, Any]:
        """The integration's metrics once every named counter has its count
        (`successes=2, discarded=1`; a breakdown such as "filtered.unmapped" through
        `**{"filtered.unmapped": 1}`)."""

        async def check() -> dict[str, Any] | None:
            current = await self.metrics()
            return current if all(current.get(k) == v for k, v in counts.items()) else None

        result: dict[str, Any] = await self.pipe.eventually(check, timeout)
        return result

    async def admin_test(self) -> httpx.Response:
        """POST /v1/admin/integrations/{id}/test: one test event sent to the vendor."""
        return await self.pipe.api.post(f"/v1/admin/integrations/{self.integration['id']}/test")

    async def create_integration(self, config: dict[str, Any]) -> httpx.Response:
        """Another integration of the same type on the same source, as the raw answer (for
        checking that a config is refused)."""
        return await self.pipe.api.post(
            "/v1/admin/integrations",
            json={
                "source_id": self.source["id"],
                "type": self.integration["type"],
                "name": "x",
                "config": config,
            },
        )

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


def build(
    type_: str, config: dict[str, Any], events: Sequence[dict[str, Any]], **context: Any
) -> BuildResult:
    """`type_`'s build of the events, offline (no server), with the vector tests' frozen clock."""
    destination = registry.get(type_)
    assert destination is not None
    settings = destination.Settings.model_validate(config)
    ctx = BuildContext(now=parse_iso("2026-11-25T12:00:00Z"), **context)
    return destination.build([EventRecord.from_event(e) for e in events], settings, ctx)


def purchase(properties: dict[str, Any] | None = None, **context: Any) -> dict[str, Any]:
    """The Order Completed the vendors' end-to-end tests send: user u-1, order O-1 of 10.50 USD,
    from a browser (user agent, IP) with the email Ada@Example.com. `properties` and the
    `context` keys given add to (or replace) those."""
    return {
        "userId": "u-1",
        "event": "Order Completed",
        "properties": {"order_id": "O-1", "revenue": 10.5, "currency": "USD", **(properties or {})},
        "context": {
            "userAgent": "UA",
            "ip": "203.0.113.5",
            "traits": {"email": "Ada@Example.com"},
            **context,
        },
    }


def tracks(*names: str, **context: Any) -> list[dict[str, Any]]:
    """One track event of user "u" per name, each with `context`: a batch to send."""
    return [{"type": "track", "userId": "u", "event": name, "context": context} for name in names]
