"""context.ip from the connection (trusted proxies only when configured) and Segment's per-event
`integrations` object."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventrelay.api.client_ip import ClientAddress
from eventrelay.routing.selection import Selection, type_keys
from eventrelay.settings import Settings, parse_networks
from tests.support.pipeline import Pipeline, running_pipeline
from tests.support.sink import Sink


def scope(peer: str, *headers: tuple[str, str]) -> dict[str, Any]:
    return {
        "client": (peer, 5000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
    }


def test_client_address_trusts_forwarding_only_from_trusted_proxies() -> None:
    none = ClientAddress(())
    assert none.of(scope("198.51.100.7", ("X-Forwarded-For", "1.2.3.4"))) == "198.51.100.7"
    proxies = ClientAddress(parse_networks("10.0.0.0/8, 127.0.0.1"))
    # Rightmost address that is not a trusted proxy; what the client wrote further left is not
    # believed.
    chain = ("X-Forwarded-For", "6.6.6.6, 203.0.113.5, 10.1.2.3")
    assert proxies.of(scope("127.0.0.1", chain)) == "203.0.113.5"
    assert proxies.of(scope("198.51.100.7", chain)) == "198.51.100.7"  # peer not a proxy
    assert proxies.of(scope("10.0.0.1", ("X-Forwarded-For", "10.0.0.9"))) == "10.0.0.9"
    assert proxies.of(scope("10.0.0.1", ("X-Forwarded-For", "1.2.3.4:8080"))) == "1.2.3.4"
    assert proxies.of(scope("10.0.0.1", ("X-Forwarded-For", "junk, 10.0.0.2"))) is None
    forwarded = ("Forwarded", 'for=192.0.2.60;proto=https, for="[2001:db8::17]:4711"')
    assert proxies.of(scope("10.0.0.1", forwarded)) == "2001:db8::17"
    assert proxies.of(scope("10.0.0.1")) == "10.0.0.1"


def test_trusted_proxies_setting_is_validated() -> None:
    with pytest.raises(ValueError, match="not an IP"):
        Settings(trusted_proxies="10.0.0.0/8, proxy.internal")


@pytest.fixture
async def pipe(settings: Settings) -> AsyncIterator[Pipeline]:
    async with running_pipeline(settings, trusted_proxies="203.0.113.0/24") as p:
        yield p


async def _delivering(pipe: Pipeline, src: dict[str, Any], sink: Sink, name: str) -> str:
    integration = await pipe.api.make_integration(
        src["id"],
        type="webhook",
        name=name,
        config={"url": f"{sink.url}/{name}", "batch": True, "batch_interval_ms": 50},
    )
    return str(integration["id"])


def _arrived(sink: Sink, name: str) -> dict[str, dict[str, Any]]:
    events: dict[str, dict[str, Any]] = {}
    for request in sink.requests:
        if request.path == f"/{name}":
            events.update({e["event"]: e for e in request.json()})
    return events


async def test_context_ip_is_filled_from_the_connection(pipe: Pipeline, sink: Sink) -> None:
    src = await pipe.api.make_source()
    await _delivering(pipe, src, sink, "hook")
    key = src["write_key"]
    # The test client connects from 203.0.113.9, a trusted proxy here.
    await pipe.ingest(
        "/v1/track",
        key,
        {"userId": "u", "event": "proxied"},
        headers={"X-Forwarded-For": "198.51.100.20"},
    )
    await pipe.ingest("/v1/track", key, {"userId": "u", "event": "direct"})
    await pipe.ingest(
        "/v1/track", key, {"userId": "u", "event": "own", "context": {"ip": "192.0.2.1"}}
    )
    await sink.wait_for(lambda: len(_arrived(sink, "hook")) == 3)
    events = _arrived(sink, "hook")
    assert events["proxied"]["context"]["ip"] == "198.51.100.20"
    assert events["direct"]["context"]["ip"] == "203.0.113.9"
    assert events["own"]["context"]["ip"] == "192.0.2.1"  # the client's value is kept


async def test_forwarded_for_is_ignored_without_trusted_proxies(
    settings: Settings, sink: Sink
) -> None:
    async with running_pipeline(settings) as pipe:
        src = await pipe.api.make_source()
        await _delivering(pipe, src, sink, "hook")
        await pipe.ingest(
            "/v1/track",
            src["write_key"],
            {"userId": "u", "event": "x"},
            headers={"X-Forwarded-For": "198.51.100.20"},
        )
        await sink.wait_for(lambda: len(_arrived(sink, "hook")) == 1)
        assert _arrived(sink, "hook")["x"]["context"]["ip"] == "203.0.113.9"


async def test_integrations_object_selects_by_name_type_and_segment_name(
    pipe: Pipeline, sink: Sink
) -> None:
    src = await pipe.api.make_source()
    prod = await _delivering(pipe, src, sink, "Webhook Prod")
    staging = await _delivering(pipe, src, sink, "Webhook Staging")
    batch = [
        {
            "type": "track",
            "userId": "u",
            "event": "only prod",
            "integrations": {"All": False, "Webhook Prod": True},
        },
        {
            "type": "track",
            "userId": "u",
            "event": "not staging",
            "integrations": {"Webhook Staging": False},
        },
        {
            "type": "track",
            "userId": "u",
            "event": "no webhooks",
            "integrations": {"Webhooks": False},
        },
        {
            "type": "track",
            "userId": "u",
            "event": "type wins over All",
            "integrations": {"all": False, "webhook": {"opt": 1}},
        },
        {
            "type": "track",
            "userId": "u",
            "event": "name is case-sensitive",
            "integrations": {"webhook prod": False},
        },
        {"type": "track", "userId": "u", "event": "everyone", "integrations": {"All": True}},
    ]
    r = await pipe.ingest("/v1/batch", src["write_key"], {"batch": batch})
    assert r.status_code == 200, r.text
    await sink.wait_for(
        lambda: (
            len(_arrived(sink, "Webhook Prod")) == 5 and len(_arrived(sink, "Webhook Staging")) == 3
        )
    )
    got_prod = set(_arrived(sink, "Webhook Prod"))
    got_staging = set(_arrived(sink, "Webhook Staging"))
    assert got_prod == {
        "only prod",
        "not staging",
        "type wins over All",
        "name is case-sensitive",
        "everyone",
    }
    assert got_staging == {"type wins over All", "name is case-sensitive", "everyone"}
    # Decided by each integration's worker as it reads the event (stored once for both).
    assert await _counted(pipe, prod, "filtered.integrations_object") == 1
    assert await _counted(pipe, staging, "filtered.integrations_object") == 3


async def _counted(pipe: Pipeline, integration_id: str, metric: str) -> Any:
    async def check() -> Any:
        return (await pipe.metrics(integration_id)).get(metric)

    return await pipe.eventually(check)


async def test_consent_is_decided_per_integration_where_it_is_read(
    pipe: Pipeline, sink: Sink
) -> None:
    """The event is stored once for every integration of the source (counted as queued for
    each); an integration's worker delivers what its consent categories allow and counts the
    rest as filtered; a paused integration skips what arrives meanwhile."""
    src = await pipe.api.make_source()
    none = await _delivering(pipe, src, sink, "no-consent")
    ads = await pipe.api.make_integration(
        src["id"],
        type="webhook",
        name="ads",
        consent_categories=["advertising"],
        config={"url": f"{sink.url}/ads", "batch": True, "batch_interval_ms": 50},
    )
    off = await _delivering(pipe, src, sink, "off")
    r = await pipe.api.post(f"/v1/admin/integrations/{off}/status", json={"status": "paused"})
    assert r.status_code == 200, r.text
    granted = {"context": {"consent": {"categoryPreferences": {"Advertising": True}}}}
    denied = {"context": {"consent": {"categoryPreferences": {"Advertising": False}}}}
    batch = [
        {"type": "track", "userId": "u", "event": "granted", **granted},
        {"type": "track", "userId": "u", "event": "denied", **denied},
        {"type": "track", "userId": "u", "event": "no consent info"},
    ]
    r = await pipe.ingest("/v1/batch", src["write_key"], {"batch": batch})
    assert r.status_code == 200
    await sink.wait_for(
        lambda: len(_arrived(sink, "no-consent")) == 3 and len(_arrived(sink, "ads")) == 1
    )
    assert set(_arrived(sink, "ads")) == {"granted"}  # deny by default without consent info
    assert await _counted(pipe, ads["id"], "filtered.consent") == 2
    assert (await pipe.metrics(ads["id"]))["queued"] == 3
    assert (await pipe.metrics(none))["queued"] == 3
    assert (await pipe.metrics(off))["filtered.disabled"] == 3
    r = await pipe.api.post(f"/v1/admin/integrations/{off}/status", json={"status": "active"})
    assert r.status_code == 200, r.text
    r = await pipe.ingest("/v1/batch", src["write_key"], {"batch": batch[2:]})
    assert r.status_code == 200
    await sink.wait_for(lambda: len(_arrived(sink, "off")) == 1)
    assert set(_arrived(sink, "off")) == {"no consent info"}


def test_type_keys_include_segment_catalog_names() -> None:
    keys = type_keys("meta_capi", "Meta Conversions API")
    assert "facebook conversions api" in keys and "meta_capi" in keys
    assert "google analytics 4" in type_keys("ga4")


@given(st.dictionaries(st.text(max_size=8), st.one_of(st.booleans(), st.none(), st.integers())))
def test_selection_follows_segments_rule(integrations: dict[str, Any]) -> None:
    """Name beats type beats All; only false turns off."""
    keys = type_keys("webhook")
    allowed = Selection(integrations).allows("Hook", keys)
    if "Hook" in integrations:
        assert allowed is (integrations["Hook"] is not False)
        return
    folded = {k.lower(): v for k, v in integrations.items()}
    for key in keys:
        if key in folded:
            assert allowed is (folded[key] is not False)
            return
    assert allowed is (folded.get("all", True) is not False)


async def test_preview_shows_integrations_object_filtering(pipe: Pipeline, sink: Sink) -> None:
    src = await pipe.api.make_source()
    hook = await _delivering(pipe, src, sink, "Webhook Prod")
    batch = [
        {"type": "track", "userId": "u", "event": "off", "integrations": {"Webhooks": False}},
        {
            "type": "track",
            "userId": "u",
            "event": "on",
            "integrations": {"All": False, "Webhook Prod": True},
        },
    ]
    r = await pipe.api.post(f"/v1/admin/integrations/{hook}/preview", json={"batch": batch})
    assert r.status_code == 200, r.text
    assert r.json()["filtered"] == [{"index": 0, "reason": "integrations_object"}]
    assert r.json()["requests"][0]["event_indices"] == [1]
