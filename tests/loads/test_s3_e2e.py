"""S3 end to end, in both shapes: /v1/batch -> eventrelay -> moto (a real S3 API server),
through the same code path as a real delivery (EVENTRELAY_VENDOR_BASE_URLS)."""

from __future__ import annotations

import asyncio
import gzip
import os
from typing import Any

from eventrelay.destinations.loading import StagedObject
from eventrelay.loaders.aws import S3Session
from eventrelay.loaders.s3 import MULTIPART_THRESHOLD, S3Uploader
from eventrelay.settings import Settings
from tests.loads.conftest import events, load_run
from tests.support.s3 import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    MotoS3,
    S3Proxy,
    landed_once,
    stored_ids,
)


def config(bucket: str, **extra: Any) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "prefix": "events/",
        "region": REGION,
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY,
        "batch_interval_ms": 500,
        **extra,
    }


async def test_ten_thousand_events_land_once_each_in_gzip_ndjson_objects(
    settings: Settings, moto: MotoS3, s3proxy: S3Proxy
) -> None:
    bucket = await asyncio.to_thread(moto.new_bucket)
    sent = events(10_000)
    async with load_run(settings, "s3", config(bucket), {"s3": s3proxy.url}) as run:
        await run.send(sent)

        await landed_once(run.pipe, moto, bucket, sent)
        keys = await asyncio.to_thread(moto.keys, bucket)
        source = run.source["id"]
        for key in keys:
            # events/<source_id>/<YYYY-MM-DD>/<HH>/<first received_at epoch>-<batch id>.json.gz
            prefix, source_id, day, hour, name = key.split("/")
            assert (prefix, source_id) == ("events", source) and len(day) == 10 and len(hour) == 2
            epoch, batch = name.removesuffix(".json.gz").split("-")
            assert epoch.isdigit() and len(batch) == 26
        metrics = await run.pipe.eventually(
            lambda: _metric(run, "successes", len(sent)), timeout=10
        )
        assert metrics["loads"] == len(keys)


async def _metric(run: Any, name: str, value: int) -> dict[str, Any] | None:
    current: dict[str, Any] = await run.metrics()
    return current if current.get(name) == value else None


async def test_a_load_failing_twice_is_retried_with_the_same_key_and_lands_once(
    settings: Settings, moto: MotoS3, s3proxy: S3Proxy
) -> None:
    bucket = await asyncio.to_thread(moto.new_bucket)
    s3proxy.fail("PUT", times=2)  # S3's 503 SlowDown, twice
    sent = events(1000)
    async with load_run(settings, "s3", config(bucket), {"s3": s3proxy.url}) as run:
        await run.send(sent)
        await run.pipe.eventually(
            lambda: _metric(run, "successes.successes_after_retry", 1000), timeout=30
        )
        ids = await stored_ids(moto, bucket)
        assert len(ids) == 1000 and set(ids.values()) == {1}
        puts = [path for method, path in s3proxy.seen if method == "PUT"]
        assert len(puts) == 3 and len(set(puts)) == 1  # three attempts, one key
        failures = await run.pipe.failures(run.id)
        assert [f["reason"] for f in failures] == ["s3_SlowDown", "s3_SlowDown"]
        assert "Please reduce your request rate" in failures[0]["error"]
        assert failures[0]["event_count"] == 1000


async def test_refused_credentials_put_the_integration_in_error_with_s3s_message(
    settings: Settings, moto: MotoS3, s3proxy: S3Proxy
) -> None:
    bucket = await asyncio.to_thread(moto.new_bucket)
    s3proxy.deny_key(ACCESS_KEY)
    async with load_run(settings, "s3", config(bucket), {"s3": s3proxy.url}) as run:
        await run.send(events(10))
        current = await run.wait_status("error")
        assert "InvalidAccessKeyId" in current["last_error_message"]
        assert "does not exist in our records" in current["last_error_message"]
        assert SECRET_KEY not in current["last_error_message"]
        assert await run.pipe.api.runtime.queue.depth(run.id) == 10  # kept, not lost
        test = (await run.post("test")).json()
        assert test["ok"] is False
        assert "InvalidAccessKeyId" in test["results"][0]["outcome"]["message"]


async def test_admin_test_creates_and_deletes_a_scratch_object(
    settings: Settings, moto: MotoS3, s3proxy: S3Proxy
) -> None:
    bucket = await asyncio.to_thread(moto.new_bucket)
    async with load_run(settings, "s3", config(bucket), {"s3": s3proxy.url}) as run:
        r = await run.post("test")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["ok"] is True
        steps = [result["request"]["url"] for result in body["results"]]
        assert steps[0].startswith(f"PUT s3://{bucket}/events/.eventrelay-test-")
        assert steps[1].startswith("DELETE ")
        assert await asyncio.to_thread(moto.keys, bucket) == []


async def test_preview_shows_the_object_that_would_be_written(
    settings: Settings, moto: MotoS3, s3proxy: S3Proxy
) -> None:
    bucket = await asyncio.to_thread(moto.new_bucket)
    cfg = config(bucket, partitioning="hive")
    async with load_run(settings, "s3", cfg, {"s3": s3proxy.url}) as run:
        r = await run.post("preview", json={"batch": events(3)})
        assert r.status_code == 200, r.text
        body = r.json()
        (obj,) = body["objects"]
        assert obj["key"].startswith(f"events/{run.source['id']}/dt=")
        assert "/hr=" in obj["key"] and obj["key"].endswith(f"-{body['batch_id']}.json.gz")
        assert [line["messageId"] for line in obj["lines"]] == [
            "msg-000000",
            "msg-000001",
            "msg-000002",
        ]
        assert await asyncio.to_thread(moto.keys, bucket) == []  # nothing uploaded


async def test_large_objects_go_up_in_parts_with_server_side_encryption(
    moto: MotoS3, s3proxy: S3Proxy
) -> None:
    bucket = await asyncio.to_thread(moto.new_bucket)
    session = S3Session(REGION, ACCESS_KEY, SECRET_KEY, s3proxy.url, 60.0)
    uploader = S3Uploader(session, bucket, "AES256")
    body = gzip.compress(os.urandom(MULTIPART_THRESHOLD + 1024), compresslevel=1)
    try:
        assert await uploader.put(StagedObject("big.json.gz", body, "application/gzip"))
        # A retry of the same batch finds it stored and does not upload again.
        assert not await uploader.put(StagedObject("big.json.gz", body, "application/gzip"))
    finally:
        await session.close()
    assert ("POST", f"/{bucket}/big.json.gz") in s3proxy.seen  # CreateMultipartUpload
    head = await asyncio.to_thread(moto.client.head_object, Bucket=bucket, Key="big.json.gz")
    assert head["ContentLength"] == len(body)
    assert head["ServerSideEncryption"] == "AES256"
    assert await asyncio.to_thread(moto.read, bucket, "big.json.gz") == body
