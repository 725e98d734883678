"""What every file-loading type shares at delivery: the catalog entry, the extras check, held
events' leases, and JetStream's room for a full buffer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from eventrelay.destinations import registry
from eventrelay.destinations.loading import MAX_BATCH_EVENTS
from eventrelay.queue.nats import NatsQueue
from eventrelay.settings import Settings
from tests.loads.conftest import events, load_run
from tests.loads.test_s3_e2e import config
from tests.support.pipeline import running_pipeline
from tests.support.s3 import MotoS3, S3Proxy, stored_ids


async def test_catalog_shows_the_file_types_available_with_their_extra(settings: Settings) -> None:
    async with running_pipeline(settings) as pipe:
        for type_, extra in (("s3", "s3"), ("redshift", "redshift")):
            entry = (await pipe.api.get(f"/v1/admin/catalog/{type_}")).json()
            assert entry["delivery"] == "available" and entry["requires_extra"] == extra
            props = entry["config_schema"]["properties"]
            assert props["batch_size"]["default"] == 10_000
            assert props["batch_interval_ms"]["default"] == 60_000
            assert props["batch_max_bytes"]["default"] == 64 * 1024 * 1024
        assert (await pipe.api.get("/v1/admin/catalog/ga4")).json()["requires_extra"] is None


async def test_a_type_whose_extra_is_missing_is_refused_with_the_extra_named(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = registry.get("s3")
    monkeypatch.setattr(type(s3), "extra_modules", ("eventrelay_no_such_module",))
    async with running_pipeline(settings) as pipe:
        source = await pipe.api.make_source()
        r = await pipe.api.post(
            "/v1/admin/integrations",
            json={"source_id": source["id"], "type": "s3", "name": "x", "config": config("bkt-x")},
        )
        assert r.status_code == 422
        (detail,) = r.json()["error"]["details"]
        assert detail["field"] == "type"
        assert "pip install 'eventrelay[s3]'" in detail["message"]


def test_jetstream_lets_a_worker_hold_a_full_buffer_and_a_batch_in_flight() -> None:
    queue = NatsQueue(Settings(queue_url="nats://127.0.0.1:4222"))
    consumer: Any = queue._consumer_config("int_x", "src_x")
    assert consumer.max_ack_pending >= 2 * MAX_BATCH_EVENTS


async def test_events_waiting_in_a_buffer_longer_than_the_lease_are_not_handed_out_twice(
    settings: Settings, moto: MotoS3, s3proxy: S3Proxy
) -> None:
    """Both queues hand out again what is not settled within the lease (JetStream's ack_wait,
    the embedded queue's lease; here 1 s); a buffer holding events for 3 s renews their leases
    (Queue.extend), so each is delivered once."""
    bucket = await asyncio.to_thread(moto.new_bucket)
    cfg = config(bucket, batch_interval_ms=3000)
    overrides = {"nats_ack_wait_seconds": 1.0, "queue_lease_seconds": 1.0}
    async with load_run(settings, "s3", cfg, {"s3": s3proxy.url}, **overrides) as run:
        await run.send(events(200))

        async def loaded() -> dict[str, Any] | None:
            m = await run.metrics()
            return m if m.get("successes") else None

        await run.pipe.eventually(loaded, timeout=20)
        await asyncio.sleep(1.5)  # any redelivered copy would be loaded by now
        metrics = await run.metrics()
        assert metrics["successes"] == 200 and metrics["loads"] == 1
        ids = await stored_ids(moto, bucket)
        assert len(ids) == 200 and set(ids.values()) == {1}
