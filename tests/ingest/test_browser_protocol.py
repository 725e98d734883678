"""What the browser SDKs need of the ingest API, request by request: Segment's short paths,
text/plain bodies, RudderStack's beacon path, client metrics, CORS on every ingest path, the
settings and source config they load, and the SDK error shape."""

from __future__ import annotations

import base64

import orjson
import pytest

from eventrelay.settings import Settings
from tests.ingest.test_ingest_api import queued, setup
from tests.support.pipeline import Pipeline, basic, running_pipeline

ORIGIN = "https://shop.example.com"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/t", {"type": "track", "event": "Viewed", "anonymousId": "a"}),
        ("/v1/i", {"type": "identify", "userId": "u", "traits": {"plan": "pro"}}),
        ("/v1/p", {"type": "page", "anonymousId": "a", "name": "Home"}),
        ("/v1/s", {"type": "screen", "anonymousId": "a", "name": "Home"}),
        ("/v1/g", {"type": "group", "userId": "u", "groupId": "g"}),
        ("/v1/a", {"type": "alias", "userId": "u", "previousId": "a"}),
        ("/v1/b", {"batch": [{"type": "track", "event": "x", "anonymousId": "a"}]}),
    ],
)
async def test_analytics_js_short_paths_with_text_plain_bodies(
    pipe: Pipeline, path: str, body: dict[str, object]
) -> None:
    src, integration = await setup(pipe)
    r = await pipe.api.client.post(
        path,
        content=orjson.dumps({**body, "writeKey": src["write_key"]}),
        headers={**basic(src["write_key"]), "Content-Type": "text/plain", "Origin": ORIGIN},
    )
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert await queued(pipe, integration["id"]) == 1


async def test_rudderstack_beacon_path_takes_the_key_from_the_query(pipe: Pipeline) -> None:
    src, integration = await setup(pipe)
    body = {"batch": [{"type": "track", "event": "x", "anonymousId": "a"}], "sentAt": None}
    r = await pipe.api.client.post(
        f"/beacon/v1/batch?writeKey={src['write_key']}",
        content=orjson.dumps(body),
        headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": ORIGIN},
    )
    assert r.status_code == 200, r.text
    assert await queued(pipe, integration["id"]) == 1


@pytest.mark.parametrize("path", ["/v1/m", "/rsaMetrics"])
async def test_client_metrics_are_answered_and_dropped(pipe: Pipeline, path: str) -> None:
    r = await pipe.api.client.post(
        path, content=b'{"series": []}', headers={"Content-Type": "text/plain", "Origin": ORIGIN}
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ORIGIN


async def test_cors_on_errors_unknown_paths_and_preflights(pipe: Pipeline) -> None:
    headers = {"Origin": ORIGIN}
    unknown = await pipe.api.client.post("/v1/nothing-here", json={}, headers=headers)
    assert unknown.status_code == 404
    assert unknown.headers["access-control-allow-origin"] == ORIGIN
    assert unknown.json()["code"] == "not_found"
    no_key = await pipe.api.client.post("/v1/t", json={"event": "x"}, headers=headers)
    assert no_key.status_code == 401
    assert no_key.headers["access-control-allow-origin"] == ORIGIN
    pre = await pipe.api.client.options(
        "/v1/b",
        headers={
            **headers,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, anonymousid, sentat",
        },
    )
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == ORIGIN
    assert "anonymousid" in pre.headers["access-control-allow-headers"]
    # The admin API is not an ingest path: its own errors, no CORS.
    admin = await pipe.api.client.get("/v1/admin/nothing-here", headers=headers)
    assert admin.status_code in (401, 404)
    assert "access-control-allow-origin" not in admin.headers
    assert "error" in admin.json()


async def test_ingest_errors_have_the_shape_the_sdks_read(pipe: Pipeline) -> None:
    src, _ = await setup(pipe)
    r = await pipe.ingest("/v1/batch", src["write_key"], {"batch": [{"type": "track"}]})
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "invalid_event"
    assert body["message"]
    assert body["details"][0]["field"].startswith("batch.0.")
    assert "error" not in body


async def test_segment_settings_point_back_at_eventrelay(pipe: Pipeline) -> None:
    src = await pipe.api.make_source(allowed_origins=[ORIGIN])
    key = src["write_key"]
    r = await pipe.api.client.get(
        f"/v1/projects/{key}/settings", headers={"Origin": ORIGIN, "Host": "events.example.com"}
    )
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == ORIGIN
    segmentio = r.json()["integrations"]["Segment.io"]
    assert segmentio["apiKey"] == key
    assert segmentio["apiHost"] == "events.example.com/v1"
    assert segmentio["protocol"] == "http"
    assert list(r.json()["integrations"]) == ["Segment.io"]  # nothing loaded from a CDN
    missing = await pipe.api.client.get("/v1/projects/wk_nobody/settings")
    assert missing.status_code == 404
    other = await pipe.api.client.get(
        f"/v1/projects/{key}/settings", headers={"Origin": "https://evil.example"}
    )
    assert other.status_code == 403


async def test_settings_use_the_public_url_and_trusted_proxy_headers(settings: Settings) -> None:
    async with running_pipeline(settings, public_url="https://events.example.com/base") as pipe:
        src = await pipe.api.make_source()
        r = await pipe.api.client.get(f"/v1/projects/{src['write_key']}/settings")
        segmentio = r.json()["integrations"]["Segment.io"]
        assert (segmentio["apiHost"], segmentio["protocol"]) == (
            "events.example.com/base/v1",
            "https",
        )
    async with running_pipeline(settings, trusted_proxies="203.0.113.0/24") as pipe:
        src = await pipe.api.make_source()
        r = await pipe.api.client.get(
            f"/v1/projects/{src['write_key']}/settings",
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "edge.example.com"},
        )
        segmentio = r.json()["integrations"]["Segment.io"]
        assert (segmentio["apiHost"], segmentio["protocol"]) == ("edge.example.com/v1", "https")


async def test_rudderstack_source_config(pipe: Pipeline) -> None:
    src = await pipe.api.make_source(name="Shop")
    key = src["write_key"]
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    for url, headers in (
        (f"/sourceConfig/?p=npm&v=3.34.1&build=modern&writeKey={key}", {}),
        ("/sourceConfig/?p=npm&v=3.34.1", auth),
    ):
        r = await pipe.api.client.get(url, headers={**headers, "Origin": ORIGIN})
        assert r.status_code == 200, r.text
        source = r.json()["source"]
        assert source["id"] == src["id"] and source["name"] == "Shop"
        assert source["enabled"] is True and source["destinations"] == []
        assert isinstance(source["config"], dict)
        assert r.headers["access-control-allow-origin"] == ORIGIN
    probe = await pipe.api.client.head("/sourceConfig/?view=ad")
    assert probe.status_code == 200
    assert (await pipe.api.client.get("/sourceConfig/?writeKey=nobody")).status_code == 404
