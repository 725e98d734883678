"""Google Cloud Storage end to end: /v1/batch -> eventrelay -> the S3-compatible XML API, played
by moto behind the proxy (which also answers Cloud Storage's `x-goog-if-generation-match`
precondition), through the same code path as a real delivery (EVENTRELAY_VENDOR_BASE_URLS)."""

from __future__ import annotations

import asyncio
from typing import Any

from eventrelay.settings import Settings
from tests.loads.conftest import events, load_run
from tests.support.s3 import MotoS3, S3Proxy, landed_once, stored_ids

ACCESS_ID = "GOOGTS7C7FUP3AIRVJTE2BCDKINBTES3HC2GY5CBFJDCQ2SYHV6A6XXVTJFSA"
SECRET = "bGoa+V7g/yqDXvKRqq+JTFn4uQZbPiQJo4pf9RzJ"


def config(bucket: str, **extra: Any) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "prefix": "events/",
        "access_key_id": ACCESS_ID,
        "secret_access_key": SECRET,
        "batch_interval_ms": 500,
        **extra,
    }


async def test_ten_thousand_events_land_once_each(
    settings: Settings, moto: MotoS3, s3proxy: S3Proxy
) -> None:
    bucket = await asyncio.to_thread(moto.new_bucket)
    sent = events(10_000)
    async with load_run(settings, "gcs", config(bucket), {"gcs": s3proxy.url}) as run:
        await run.send(sent)

        await landed_once(run.pipe, moto, bucket, sent)
        keys = await asyncio.to_thread(moto.keys, bucket)
        assert all(k.startswith(f"events/{run.source['id']}/") for k in keys)
        # Every upload asked Cloud Storage to create only (no S3 If-None-Match).
        assert s3proxy.preconditions and set(s3proxy.preconditions) == {"0"}


async def test_a_load_failing_twice_lands_once_under_the_same_key(
    settings: Settings, moto: MotoS3, s3proxy: S3Proxy
) -> None:
    bucket = await asyncio.to_thread(moto.new_bucket)
    s3proxy.fail("PUT", times=2)
    async with load_run(settings, "gcs", config(bucket), {"gcs": s3proxy.url}) as run:
        await run.send(events(1000))

        async def delivered() -> dict[str, Any] | None:
            current: dict[str, Any] = await run.metrics()
            return current if current.get("successes") == 1000 else None

        await run.pipe.eventually(delivered, timeout=30)
        ids = await stored_ids(moto, bucket)
        assert len(ids) == 1000 and set(ids.values()) == {1}
        puts = [path for method, path in s3proxy.seen if method == "PUT"]
        assert len(puts) == 3 and len(set(puts)) == 1


async def test_refused_credentials_put_the_integration_in_error_with_the_message(
    settings: Settings, moto: MotoS3, s3proxy: S3Proxy
) -> None:
    bucket = await asyncio.to_thread(moto.new_bucket)
    s3proxy.deny_key(
        ACCESS_ID, "InvalidSecurity", "The provided security credentials are not valid."
    )
    async with load_run(settings, "gcs", config(bucket), {"gcs": s3proxy.url}) as run:
        await run.send(events(10))
        current = await run.wait_status("error")
        assert "InvalidSecurity" in current["last_error_message"]
        assert "credentials are not valid" in current["last_error_message"]
        assert SECRET not in current["last_error_message"]
        assert await run.pipe.api.runtime.queue.depth(run.id) == 10  # kept, not lost
        test = (await run.post("test")).json()
        assert test["ok"] is False
        assert test["results"][0]["request"]["url"].startswith(f"PUT gs://{bucket}/events/")


async def test_a_retried_upload_of_a_stored_object_counts_as_done(
    moto: MotoS3, s3proxy: S3Proxy
) -> None:
    from eventrelay.destinations.loading import StagedObject
    from eventrelay.loaders.aws import S3Session
    from eventrelay.loaders.s3 import S3Uploader

    bucket = await asyncio.to_thread(moto.new_bucket)
    session = S3Session("auto", ACCESS_ID, SECRET, s3proxy.url, 30.0)
    uploader = S3Uploader(session, bucket, scheme="gs", generation_precondition=True)
    item = StagedObject("a.json.gz", b"x", "application/gzip")
    try:
        assert await uploader.put(item)
        assert not await uploader.put(item)  # 412 from the precondition: already stored
    finally:
        await session.close()
    assert s3proxy.preconditions == ["0", "0"]
