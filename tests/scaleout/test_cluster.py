"""The scale-out shape as real processes: API processes and delivery workers on a shared
PostgreSQL and a nats-server of the test's own.

Every event answered 200 is delivered at least once, whatever happens to a worker (SIGKILL
mid-batch) or to NATS (stopped and restarted under load); a deleted integration receives nothing
once the deletion has reached the workers; configuration changes reach every process within
about a second; metrics written by several workers add up.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cluster import Cluster, cluster, delivered_by
from tests.support.nats import NatsServer
from tests.support.sink import Sink

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cluster")]

ENV = {
    "EVENTRELAY_LOG_LEVEL": "WARNING",
    "EVENTRELAY_ALLOW_PRIVATE_TARGETS": "1",
    "EVENTRELAY_RETRY_BASE_SECONDS": "0.05",
    "EVENTRELAY_RETRY_CAP_SECONDS": "0.5",
    # A killed worker's unacknowledged messages come back after this long.
    "EVENTRELAY_NATS_ACK_WAIT_SECONDS": "3",
}
# Deletions and changes reach every process within about a second; allow for a loaded machine.
PROPAGATION = 2.0


async def create_source(admin: httpx.AsyncClient) -> dict[str, Any]:
    r = await admin.post("/v1/admin/sources", json={"name": f"load-{uuid.uuid4().hex[:6]}"})
    assert r.status_code == 201, r.text
    return dict(r.json())


SIGNING = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


async def create_webhook(admin: httpx.AsyncClient, source_id: str, url: str, **config: Any) -> str:
    r = await admin.post(
        "/v1/admin/integrations",
        json={
            "source_id": source_id,
            "type": "webhook",
            "name": url.rsplit("/", 1)[1],
            "config": {"url": url, "signing_secret": SIGNING} | config,
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


class Load:
    """Batches of fresh events spread over every API process; remembers what was acknowledged."""

    def __init__(self, c: Cluster, write_key: str, timeout: float = 5) -> None:
        self.c = c
        self.write_key = write_key
        self.timeout = timeout
        self.acked: set[str] = set()
        self.refused = 0
        self.answers: Counter[int | str] = Counter()  # status codes, or the client's error
        self.slowest = 0.0  # seconds, the longest request (informational)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _run(self, api: int) -> None:
        base = self.c.apis[api].base_url
        auth = (self.write_key, "")
        async with httpx.AsyncClient(base_url=base, auth=auth, timeout=self.timeout) as cl:
            while not self._stop.is_set():
                ids = [str(uuid.uuid4()) for _ in range(20)]
                batch = [
                    {"type": "track", "userId": "u", "event": "Load", "messageId": i} for i in ids
                ]
                began = time.monotonic()
                try:
                    r = await cl.post("/v1/batch", json={"batch": batch})
                    self.answers[r.status_code] += 1
                except httpx.HTTPError as exc:
                    self.answers[type(exc).__name__] += 1
                    r = None
                self.slowest = max(self.slowest, time.monotonic() - began)
                if r is not None and r.status_code == 200:
                    self.acked.update(ids)
                else:
                    self.refused += 1
                    await asyncio.sleep(0.05)

    def start(self) -> Load:
        self._tasks = [asyncio.create_task(self._run(i)) for i in range(len(self.c.apis))]
        return self

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


def received_at(sink: Sink, path: str, after: float = 0.0) -> Counter[str]:
    """How many times the sink received each messageId at `path`."""
    out: Counter[str] = Counter()
    for r in sink.requests:
        if r.path == path and r.at >= after:
            body = r.json()
            out.update(e["messageId"] for e in (body if isinstance(body, list) else [body]))
    return out


def ids_at(sink: Sink, path: str, after: float = 0.0) -> set[str]:
    return set(received_at(sink, path, after))


async def eventually(check: Callable[[], Any], timeout: float, what: str) -> float:
    """Poll an (async) check until it is truthy; returns the seconds it took."""
    began = time.monotonic()
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - began
        if time.monotonic() - began > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_sigkill_of_a_worker_mid_batch_loses_nothing_and_deleted_gets_nothing(
    tmp_path: Path,
) -> None:
    sink = await Sink().start()
    sink.delay = 0.01  # batches are in flight when the worker dies
    try:
        async with cluster(tmp_path, ENV, apis=2, workers=2) as c:
            async with c.admin() as admin:
                source = await create_source(admin)
                kept = await create_webhook(
                    admin, source["id"], sink.url + "/kept", batch=True, batch_size=20
                )
                doomed = await create_webhook(admin, source["id"], sink.url + "/doomed")
            load = Load(c, source["write_key"]).start()
            await sink.wait_for(lambda: len(ids_at(sink, "/kept")) > 300, timeout=30)
            # Both workers take part in the one integration's queue.
            w1, w2 = c.workers["w1"], c.workers["w2"]
            await eventually(
                lambda: _both_delivered(w1, w2, kept), timeout=20, what="both workers delivering"
            )
            c.kill_worker("w1")
            await asyncio.sleep(0.5)
            async with c.admin(1) as admin:
                assert (await admin.delete(f"/v1/admin/integrations/{doomed}")).status_code == 204
            deleted_at = time.time()
            await asyncio.to_thread(c.start_worker, "w1-restarted")
            await asyncio.sleep(PROPAGATION + 1)
            await load.stop()
            acked = set(load.acked)
            await sink.wait_for(lambda: acked <= ids_at(sink, "/kept"), timeout=60)
            assert await delivered_by(c.workers["w1-restarted"], kept) > 0
        # At least once: a batch the killed worker held is delivered again (receivers of a
        # batched webhook dedupe by each event's messageId).
        assert ids_at(sink, "/doomed"), "the doomed integration was receiving before its deletion"
        late = ids_at(sink, "/doomed", after=deleted_at + PROPAGATION)
        assert not late, f"{len(late)} events delivered to a deleted integration"
    finally:
        await sink.close()


async def _both_delivered(w1: Any, w2: Any, integration_id: str) -> bool:
    return bool(await delivered_by(w1, integration_id) and await delivered_by(w2, integration_id))


async def test_nats_restart_under_load_loses_no_acknowledged_event(tmp_path: Path) -> None:
    sink = await Sink().start()
    try:
        # Ingest retries a publish for this long before answering 503 (a single server has no
        # other to fail over to).
        env = ENV | {"EVENTRELAY_NATS_PUBLISH_DEADLINE_SECONDS": "0.3"}
        async with cluster(tmp_path, env, apis=1, workers=2) as c:
            async with c.admin() as admin:
                source = await create_source(admin)
                await create_webhook(admin, source["id"], sink.url + "/hook", batch=True)
            load = Load(c, source["write_key"]).start()
            await sink.wait_for(lambda: len(ids_at(sink, "/hook")) > 200, timeout=30)
            assert isinstance(c.nats, NatsServer)
            c.nats.stop()
            refused_before = load.refused
            await asyncio.sleep(1.0)
            assert load.refused > refused_before, "ingest refuses while NATS is down"
            c.nats.start()
            acked_at_restart = len(load.acked)
            await eventually(
                lambda: len(load.acked) > acked_at_restart + 200, timeout=30, what="ingest back"
            )
            await load.stop()
            acked = set(load.acked)
            await sink.wait_for(lambda: acked <= ids_at(sink, "/hook"), timeout=60)
    finally:
        await sink.close()


async def test_config_changes_reach_every_process_within_about_a_second(tmp_path: Path) -> None:
    sink = await Sink().start()
    sink.responder = lambda r: (401, {}, b'{"error":"bad token"}') if r.path == "/denied" else None
    try:
        async with (
            cluster(tmp_path, ENV, apis=2, workers=2) as c,
            c.admin(0) as admin0,
            c.admin(1) as admin1,
        ):
            source = await create_source(admin0)
            key = source["write_key"]

            async def send_until(api: int, path: str) -> float:
                """Send one event a tick through one API process until `path` receives."""
                base = c.apis[api].base_url
                async with httpx.AsyncClient(base_url=base, auth=(key, "")) as ingest:

                    async def tick() -> bool:
                        body = {"userId": "u", "event": "Tick"}
                        assert (await ingest.post("/v1/track", json=body)).status_code == 200
                        return bool(ids_at(sink, path))

                    return await eventually(tick, timeout=10, what=f"delivery to {path}")

            # Created on API 0: API 1 routes to it, a worker delivers it.
            integration = await create_webhook(admin0, source["id"], sink.url + "/first")
            created = await send_until(1, "/first")
            # Changed on API 1: the workers use the new URL.
            r = await admin1.put(
                f"/v1/admin/integrations/{integration}",
                # A new URL takes the secrets again (stored ones never follow a new target).
                json={"config": {"url": sink.url + "/second", "signing_secret": SIGNING}},
            )
            assert r.status_code == 200, r.text
            changed = await send_until(0, "/second")
            # Disabled on API 0: nothing new is routed by API 1.
            r = await admin0.put(f"/v1/admin/integrations/{integration}", json={"enabled": False})
            assert r.status_code == 200
            await asyncio.sleep(PROPAGATION)
            before = len(sink.requests)
            async with httpx.AsyncClient(base_url=c.apis[1].base_url, auth=(key, "")) as i:
                for _ in range(5):
                    await i.post("/v1/track", json={"userId": "u", "event": "Off"})
            await asyncio.sleep(1.0)
            assert len(sink.requests) == before
            # One worker meets a 401: the error state reaches the API and the other worker.
            r = await admin1.put(
                f"/v1/admin/integrations/{integration}",
                json={
                    "enabled": True,
                    "config": {"url": sink.url + "/denied", "signing_secret": SIGNING},
                },
            )
            assert r.status_code == 200
            await send_until(0, "/denied")

            async def in_error() -> bool:
                got = (await admin0.get(f"/v1/admin/integrations/{integration}")).json()
                return bool(got["status"] == "error" and got["last_error_message"])

            await eventually(in_error, timeout=10, what="error state")
            await asyncio.sleep(PROPAGATION)
            denied = len(ids_at(sink, "/denied"))
            async with httpx.AsyncClient(base_url=c.apis[1].base_url, auth=(key, "")) as i:
                for _ in range(5):
                    await i.post("/v1/track", json={"userId": "u", "event": "Held"})
            await asyncio.sleep(1.0)
            assert len(ids_at(sink, "/denied")) == denied, "delivery paused everywhere"
        # Informational: how long a change took to take effect, measured end to end.
        print(f"created->delivered {created:.2f}s, changed->delivered {changed:.2f}s")
    finally:
        await sink.close()


async def test_metrics_and_last_fields_add_up_across_workers(tmp_path: Path) -> None:
    sink = await Sink().start()
    sink.statuses = [500] * 10  # a few retries, settled by whichever worker pulls them again
    try:
        async with cluster(tmp_path, ENV, apis=2, workers=2) as c:
            async with c.admin() as admin:
                source = await create_source(admin)
                integration = await create_webhook(admin, source["id"], sink.url + "/hook")
            sent: set[str] = set()
            for api in (0, 1):
                async with httpx.AsyncClient(
                    base_url=c.apis[api].base_url, auth=(source["write_key"], "")
                ) as ingest:
                    for _ in range(10):
                        ids = [str(uuid.uuid4()) for _ in range(30)]
                        batch = [
                            {"type": "track", "userId": "u", "event": "E", "messageId": i}
                            for i in ids
                        ]
                        r = await ingest.post("/v1/batch", json={"batch": batch})
                        assert r.status_code == 200
                        sent.update(ids)
            await sink.wait_for(lambda: sent <= ids_at(sink, "/hook"), timeout=60)
            by_worker = [await delivered_by(w, integration) for w in c.workers.values()]
            assert all(by_worker), f"each worker delivered some: {by_worker}"
            assert sum(by_worker) == len(sent)
            async with c.admin(1) as admin:

                async def totals() -> dict[str, Any] | None:
                    r = await admin.get(f"/v1/admin/integrations/{integration}/metrics")
                    got = {m["metricName"]: m for m in r.json()["metrics"]}
                    return got if got["successes"]["total"] == len(sent) else None

                await eventually(totals, timeout=15, what="metrics flushed by every worker")
                metrics = await totals()
                assert metrics is not None
                assert metrics["retried"]["total"] == 10
                retried = metrics["successes"]["breakdown"][1]
                assert retried == {"metricName": "successes_after_retry", "value": 10}
                got = (await admin.get(f"/v1/admin/integrations/{integration}")).json()
                assert got["last_delivery_at"] is not None
                failures = await admin.get(f"/v1/admin/integrations/{integration}/failures")
                # Sampled (a few per integration per second and process), each as the vendor said.
                recorded = failures.json()["data"]
                assert 1 <= len(recorded) <= 10
                assert {(f["outcome"], f["status_code"]) for f in recorded} == {("retry", 500)}
    finally:
        await sink.close()
