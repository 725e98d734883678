"""Issue 9.1: a batch held by a slow vendor when its worker is replaced (the integration is
updated, paused, or enters the error state) goes back to the queue and is delivered by the next
worker, without a restart, in both shapes. The queue-level cases (release, lease expiry, expiry
of abandoned leases) are in tests/queue/test_contract.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from eventrelay.settings import Settings
from tests.support.pipeline import Pipeline, running_pipeline
from tests.support.sink import Sink

EVENTS = [f"e{i}" for i in range(20)]


@pytest.fixture
async def slow_sink() -> AsyncIterator[Sink]:
    sink = await Sink().start()
    sink.delay = 60.0  # holds the first request far longer than the drain time
    yield sink
    await sink.close()


async def _update(pipe: Pipeline, integration_id: str) -> None:
    r = await pipe.api.put(f"/v1/admin/integrations/{integration_id}", json={"name": "Renamed"})
    assert r.status_code == 200, r.text


async def _pause_and_resume(pipe: Pipeline, integration_id: str) -> None:
    path = f"/v1/admin/integrations/{integration_id}/status"
    assert (await pipe.api.post(path, json={"status": "paused"})).status_code == 200
    assert (await pipe.api.post(path, json={"status": "active"})).status_code == 200


@pytest.mark.parametrize("change", [_update, _pause_and_resume], ids=["update", "pause-resume"])
async def test_a_batch_cancelled_mid_request_is_delivered_by_the_next_worker(
    settings: Settings, slow_sink: Sink, change: Any
) -> None:
    async with running_pipeline(settings, http_timeout_seconds=120, drain_seconds=0.5) as pipe:
        src = await pipe.api.make_source()
        integration = await pipe.api.make_integration(
            src["id"],
            type="webhook",
            config={
                "url": slow_sink.url + "/hook",
                "batch": True,
                "batch_size": 50,
                "batch_interval_ms": 200,
            },
        )
        batch = [{"type": "track", "userId": "u", "event": name} for name in EVENTS]
        r = await pipe.ingest("/v1/batch", src["write_key"], {"batch": batch})
        assert r.status_code == 200
        await slow_sink.wait_for(lambda: len(slow_sink.requests) >= 1)
        assert len(slow_sink.requests[0].json()) == 20  # one request holds the whole batch
        slow_sink.delay = 0.0
        await change(pipe, integration["id"])

        # The old worker gives up after the drain time and hands the batch back; the new one
        # sends it (the first request is still hanging at the vendor, unanswered).
        def delivered_again() -> bool:
            later = [e["event"] for r in slow_sink.requests[1:] for e in r.json()]
            return sorted(later) == sorted(EVENTS)

        await slow_sink.wait_for(delivered_again, timeout=15)

        async def counted() -> bool:
            return bool((await pipe.metrics(integration["id"]))["successes"] == 20)

        await pipe.eventually(counted)
        assert pipe.api.runtime.queue is not None
        assert await pipe.api.runtime.queue.depth(integration["id"]) == 0
