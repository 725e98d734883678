"""The Segment-compatible ingest endpoints: auth, limits, validation, CORS, routing."""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import orjson
import pytest

from eventrelay.settings import Settings
from tests.support.examples import valid_configs
from tests.support.pipeline import Pipeline, basic, running_pipeline
from tests.support.planned import planned_destination


def paused_webhook(consent: list[str] | None = None) -> dict[str, Any]:
    """A webhook integration that is paused, so its queue can be inspected. Its host never
    resolves (.invalid), should a worker try it before the test pauses it."""
    config = {**valid_configs()["webhook"], "url": "https://hooks.example.invalid/events"}
    body: dict[str, Any] = {"type": "webhook", "config": config}
    if consent is not None:
        body["consent_categories"] = consent
    return body


async def queued(pipe: Pipeline, integration_id: str) -> int:
    assert pipe.api.runtime.queue is not None
    return await pipe.api.runtime.queue.depth(integration_id)


async def setup(pipe: Pipeline, **source: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    src = await pipe.api.make_source(**source)
    # Error state keeps delivery paused while events stay queued and countable. Created paused,
    # so no worker starts sending (to a host outside this machine) before the error state is set.
    integration = await pipe.api.make_integration(src["id"], enabled=False, **paused_webhook())
    async with pipe.api.runtime.db.transaction() as conn:
        from sqlalchemy import update

        from eventrelay.store.tables import integrations

        await conn.execute(
            update(integrations)
            .where(integrations.c.id == integration["id"])
            .values(status="error", enabled=True)
        )
    from eventrelay.bus import Change

    await pipe.api.runtime.bus.publish(Change("integration", integration["id"]))
    return src, integration


async def test_track_with_basic_auth_is_durable_on_200(pipe: Pipeline) -> None:
    src, integration = await setup(pipe)
    r = await pipe.ingest("/v1/track", src["write_key"], {"userId": "u1", "event": "Signed Up"})
    assert r.status_code == 200
    assert r.json() == {"success": True}
    assert await queued(pipe, integration["id"]) == 1


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/identify", {"userId": "u1", "traits": {"email": "a@b.c"}}),
        ("/v1/page", {"anonymousId": "a1", "name": "Home"}),
        ("/v1/screen", {"anonymousId": "a1", "name": "Home"}),
        ("/v1/group", {"userId": "u1", "groupId": "g1"}),
        ("/v1/alias", {"userId": "u1", "previousId": "a1"}),
    ],
)
async def test_every_event_type_endpoint(pipe: Pipeline, path: str, body: dict[str, Any]) -> None:
    src, integration = await setup(pipe)
    r = await pipe.ingest(path, src["write_key"], body)
    assert r.status_code == 200, r.text
    assert await queued(pipe, integration["id"]) == 1


async def test_write_key_in_body(pipe: Pipeline) -> None:
    src, integration = await setup(pipe)
    r = await pipe.api.client.post(
        "/v1/batch",
        json={
            "writeKey": src["write_key"],
            "batch": [{"type": "track", "userId": "u", "event": "x"}],
        },
    )
    assert r.status_code == 200
    assert await queued(pipe, integration["id"]) == 1


async def test_unknown_and_revoked_keys_are_401(pipe: Pipeline) -> None:
    src, _ = await setup(pipe)
    r = await pipe.ingest("/v1/track", "wk_unknown", {"userId": "u", "event": "x"})
    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized"
    r = await pipe.api.client.post("/v1/track", json={"userId": "u", "event": "x"})
    assert r.status_code == 401
    old = src["write_keys"][0]
    rotated = (await pipe.api.post(f"/v1/admin/sources/{src['id']}/write-keys/rotate")).json()
    assert (
        await pipe.ingest("/v1/track", old["key"], {"userId": "u", "event": "x"})
    ).status_code == 200
    r = await pipe.ingest("/v1/track", rotated["write_key"], {"userId": "u", "event": "x"})
    assert r.status_code == 200
    await pipe.api.delete(f"/v1/admin/sources/{src['id']}/write-keys/{old['id']}")
    assert (
        await pipe.ingest("/v1/track", old["key"], {"userId": "u", "event": "x"})
    ).status_code == 401


async def test_bad_json_is_400(pipe: Pipeline) -> None:
    src, _ = await setup(pipe)
    r = await pipe.api.client.post(
        "/v1/batch",
        content=b"{nope",
        headers={**basic(src["write_key"]), "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_json"


async def test_size_limits_are_413(pipe: Pipeline) -> None:
    src, integration = await setup(pipe)
    big = {"userId": "u", "event": "x", "properties": {"blob": "x" * (33 * 1024)}}
    r = await pipe.ingest("/v1/track", src["write_key"], big)
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"
    events = [{"type": "track", "userId": "u", "event": "x", "properties": {"p": "y" * 200}}] * 2600
    r = await pipe.ingest("/v1/batch", src["write_key"], {"batch": events})
    assert r.status_code == 413  # over 500 KB
    too_many = [{"type": "track", "userId": "u", "event": "x"}] * 2501
    r = await pipe.ingest("/v1/batch", src["write_key"], {"batch": too_many})
    assert r.status_code == 413
    assert "2500" in r.json()["message"]
    mixed = [
        {"type": "track", "userId": "u", "event": "ok"},
        {"type": "track", "userId": "u", "event": "big", "properties": {"b": "z" * (33 * 1024)}},
    ]
    r = await pipe.ingest("/v1/batch", src["write_key"], {"batch": mixed})
    assert r.status_code == 200
    assert r.json()["rejected"] == [
        {
            "index": 1,
            "code": "event_too_large",
            "field": "batch.1",
            "message": "event is over 32 KB",
        }
    ]
    assert await queued(pipe, integration["id"]) == 1


async def test_bad_events_in_a_batch_are_reported_by_index(pipe: Pipeline) -> None:
    src, integration = await setup(pipe)
    batch = [
        {"type": "track", "userId": "u", "event": "Good 1"},
        {"type": "track", "userId": "u"},
        {"type": "identify"},
        {"type": "page", "anonymousId": "a"},
        "not an object",
    ]
    r = await pipe.ingest("/v1/batch", src["write_key"], {"batch": batch})
    assert r.status_code == 200
    body = r.json()
    assert body["success"] is True and body["accepted"] == 2
    assert [(x["index"], x["field"]) for x in body["rejected"]] == [
        (1, "batch.1.event"),
        (2, "batch.2.userId"),
        (4, "batch.4"),
    ]
    assert await queued(pipe, integration["id"]) == 2


async def test_batch_without_valid_events_is_400(pipe: Pipeline) -> None:
    src, integration = await setup(pipe)
    r = await pipe.ingest(
        "/v1/batch", src["write_key"], {"batch": [{"type": "track", "userId": "u"}]}
    )
    assert r.status_code == 400
    assert r.json()["details"][0]["field"] == "batch.0.event"
    r = await pipe.ingest("/v1/track", src["write_key"], {"event": "x"})
    assert r.status_code == 400
    assert r.json()["details"] == [
        {"field": "userId", "message": "userId or anonymousId is required"}
    ]
    r = await pipe.ingest("/v1/batch", src["write_key"], {"events": []})
    assert r.status_code == 400
    assert await queued(pipe, integration["id"]) == 0


async def test_gzip_bodies(pipe: Pipeline) -> None:
    src, integration = await setup(pipe)
    body = gzip.compress(orjson.dumps({"batch": [{"type": "track", "userId": "u", "event": "z"}]}))
    r = await pipe.api.client.post(
        "/v1/batch",
        content=body,
        headers={
            **basic(src["write_key"]),
            "Content-Encoding": "gzip",
            "Content-Type": "application/json",
        },
    )
    assert r.status_code == 200, r.text
    assert await queued(pipe, integration["id"]) == 1
    bomb = gzip.compress(b" " * (10 * 1024 * 1024))
    r = await pipe.api.client.post(
        "/v1/batch", content=bomb, headers={**basic(src["write_key"]), "Content-Encoding": "gzip"}
    )
    assert r.status_code == 413


async def test_cors(pipe: Pipeline) -> None:
    src, _ = await setup(pipe, allowed_origins=["https://shop.example.com"])
    pre = await pipe.api.client.options(
        "/v1/track",
        headers={
            "Origin": "https://shop.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "https://shop.example.com"
    assert "POST" in pre.headers["access-control-allow-methods"]
    ok = await pipe.ingest(
        "/v1/track",
        src["write_key"],
        {"userId": "u", "event": "x"},
        headers={"Origin": "https://shop.example.com"},
    )
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://shop.example.com"
    denied = await pipe.ingest(
        "/v1/track",
        src["write_key"],
        {"userId": "u", "event": "x"},
        headers={"Origin": "https://evil.example"},
    )
    assert denied.status_code == 403
    assert denied.json()["code"] == "origin_not_allowed"
    # Readable by the browser: otherwise it reports a network error, which the SDKs retry.
    assert denied.headers["access-control-allow-origin"] == "https://evil.example"
    anyone, _ = await setup(pipe)
    r = await pipe.ingest(
        "/v1/track",
        anyone["write_key"],
        {"userId": "u", "event": "x"},
        headers={"Origin": "https://a.example"},
    )
    assert r.headers["access-control-allow-origin"] == "https://a.example"


async def test_consent_default_allow(pipe: Pipeline) -> None:
    src = await pipe.api.make_source(consent_default="allow")
    ads = await pipe.api.make_integration(src["id"], **paused_webhook(["advertising"]))
    async with pipe.api.runtime.db.transaction() as conn:
        from sqlalchemy import update

        from eventrelay.store.tables import integrations

        await conn.execute(
            update(integrations).where(integrations.c.id == ads["id"]).values(status="error")
        )
    from eventrelay.bus import Change

    await pipe.api.runtime.bus.publish(Change("integration", ads["id"]))
    await pipe.ingest("/v1/track", src["write_key"], {"userId": "u", "event": "no info"})
    assert await queued(pipe, ads["id"]) == 1


async def test_deleting_an_integration_discards_its_queue(pipe: Pipeline) -> None:
    src, integration = await setup(pipe)
    for _ in range(3):
        await pipe.ingest("/v1/track", src["write_key"], {"userId": "u", "event": "x"})
    assert await queued(pipe, integration["id"]) == 3
    assert (await pipe.api.delete(f"/v1/admin/integrations/{integration['id']}")).status_code == 204

    async def empty() -> bool:
        return await queued(pipe, integration["id"]) == 0

    await pipe.eventually(empty)


async def test_events_of_a_paused_integration_expire_counted(settings: Settings) -> None:
    """Nobody pulls an integration in error: the janitor expires its old events and counts them
    (on JetStream too, before the stream's own max_age would drop them uncounted)."""
    async with running_pipeline(settings, max_event_age_seconds=0.5) as pipe:
        src, integration = await setup(pipe)
        for _ in range(3):
            await pipe.ingest("/v1/track", src["write_key"], {"userId": "u", "event": "x"})
        await asyncio.sleep(0.7)
        assert pipe.api.delivery is not None
        await pipe.api.delivery.supervisor.expire()
        assert (await pipe.metrics(integration["id"]))["expired"] == 3
        assert await queued(pipe, integration["id"]) == 0


async def test_types_without_delivery_are_counted_unavailable(pipe: Pipeline) -> None:
    """The API creates no type that cannot deliver; one left by an older version counts its
    events as unavailable."""
    with planned_destination() as type_:
        src = await pipe.api.make_source()
        planned = await pipe.api.stored_integration(
            src["id"], type_, {"url": "https://hooks.example.invalid/in"}
        )
        await pipe.ingest("/v1/track", src["write_key"], {"userId": "u", "event": "x"})
        assert (await pipe.metrics(planned))["filtered.unavailable"] == 1


async def test_get_is_405(pipe: Pipeline) -> None:
    r = await pipe.api.client.get("/v1/track")
    assert r.status_code == 405
