"""The official Segment and RudderStack Python SDKs, unchanged, pointed at eventrelay: their
events arrive at a webhook receiver with their content, consent filtering applied."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient

from eventrelay.app import create_app
from eventrelay.runtime import Runtime
from eventrelay.settings import Settings
from tests.support.server import serve_in_thread
from tests.support.sink import Sink

pytestmark = pytest.mark.slow

ADS_GRANTED = {"consent": {"categoryPreferences": {"Advertising": True}}}
ADS_DENIED = {"consent": {"categoryPreferences": {"Advertising": False}}}


@pytest.fixture
def live(settings: Settings) -> Iterator[tuple[str, str]]:
    conf = settings.model_copy(update={"retry_base_seconds": 0.05})
    app = create_app(Runtime.create(conf), bootstrap_owner=True)
    with serve_in_thread(app) as base_url:
        yield base_url, conf.owner_token_file.read_text().strip()


@pytest.fixture
async def sinks() -> AsyncIterator[tuple[Sink, Sink]]:
    plain, ads = await Sink().start(), await Sink().start()
    yield plain, ads
    await plain.close()
    await ads.close()


async def configure(base_url: str, token: str, plain: Sink, ads: Sink) -> str:
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=auth) as admin:
        source = (await admin.post("/v1/admin/sources", json={"name": "Backend"})).json()
        for sink, consent in ((plain, []), (ads, ["advertising"])):
            r = await admin.post(
                "/v1/admin/integrations",
                json={
                    "source_id": source["id"],
                    "type": "webhook",
                    "name": "hook",
                    "config": {"url": sink.url + "/hook"},
                    "consent_categories": consent,
                },
            )
            assert r.status_code == 201, r.text
    return str(source["write_key"])


def send_with(client: Any) -> None:
    client.track(
        user_id="u-1",
        event="Order Completed",
        properties={"revenue": 42.5, "currency": "EUR"},
        context=ADS_GRANTED,
    )
    client.track(
        user_id="u-2", event="Product Viewed", properties={"sku": "S-1"}, context=ADS_DENIED
    )
    client.identify(user_id="u-1", traits={"email": "ada@example.com", "plan": "pro"})
    client.page(
        user_id="u-1", name="Pricing", properties={"url": "https://shop.example.com/pricing"}
    )
    client.flush()


@pytest.mark.parametrize("sdk", ["segment", "rudderstack"])
async def test_sdk_events_arrive_with_their_content(
    live: tuple[str, str], sinks: tuple[Sink, Sink], sdk: str
) -> None:
    base_url, token = live
    plain, ads = sinks
    write_key = await configure(base_url, token, plain, ads)
    errors: list[Any] = []
    if sdk == "segment":
        client: Any = SegmentClient(
            write_key, host=base_url, sync_mode=True, on_error=lambda e, b: errors.append(e)
        )
    else:
        client = RudderClient(
            write_key, host=base_url, sync_mode=True, on_error=lambda e, b: errors.append(e)
        )
    await asyncio.to_thread(send_with, client)
    assert errors == []

    await plain.wait_for(lambda: len(plain.events()) == 4, timeout=15)
    by_type = {(e["type"], e.get("event") or e.get("name")): e for e in plain.events()}
    order = by_type[("track", "Order Completed")]
    assert order["userId"] == "u-1"
    assert order["properties"] == {"revenue": 42.5, "currency": "EUR"}
    assert order["context"]["library"]["name"]  # the SDK's own context survives
    assert order["receivedAt"].endswith("Z")
    assert order["messageId"]
    identify = by_type[("identify", None)]
    assert identify["traits"] == {"email": "ada@example.com", "plan": "pro"}
    page = by_type[("page", "Pricing")]
    assert page["properties"]["url"] == "https://shop.example.com/pricing"
    # Consent: only the event granting advertising reaches the advertising integration.
    await ads.wait_for(lambda: len(ads.events()) == 1, timeout=15)
    await asyncio.sleep(0.3)
    assert [e["event"] for e in ads.events()] == ["Order Completed"]
