"""Durability: kill -9 (and SIGTERM) of `eventrelay serve` mid-load loses no acknowledged event.

A real server process, a load generator, a webhook receiver. Every event answered 200 must be
delivered at least once after a restart, and every delivery of one event carries the same
webhook-id (the receiver's idempotency key).
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from tests.support.process import eventrelay_process
from tests.support.sink import Sink

pytestmark = pytest.mark.slow

ENV = {
    "EVENTRELAY_LOG_LEVEL": "INFO",
    "EVENTRELAY_ALLOW_PRIVATE_TARGETS": "1",
    "EVENTRELAY_RETRY_BASE_SECONDS": "0.05",
    "EVENTRELAY_RETRY_CAP_SECONDS": "0.5",
}


async def _configure(base_url: str, token: str, sink: Sink) -> str:
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}
    ) as admin:
        source = (await admin.post("/v1/admin/sources", json={"name": "load"})).json()
        r = await admin.post(
            "/v1/admin/integrations",
            json={
                "source_id": source["id"],
                "type": "webhook",
                "name": "receiver",
                "config": {
                    "url": sink.url + "/hook",
                    "signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                },
            },
        )
        assert r.status_code == 201, r.text
    return str(source["write_key"])


async def _load(base_url: str, write_key: str, acked: set[str], stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=base_url, auth=(write_key, ""), timeout=5) as client:
        while not stop.is_set():
            ids = [str(uuid.uuid4()) for _ in range(25)]
            batch = [{"type": "track", "userId": "u", "event": "Load", "messageId": i} for i in ids]
            try:
                r = await client.post("/v1/batch", json={"batch": batch})
            except httpx.HTTPError:
                await asyncio.sleep(0.01)
                continue
            if r.status_code == 200:
                acked.update(ids)


async def _run(tmp_path: Path, sig: int) -> None:
    sink = await Sink().start()
    sink.delay = 0.002  # a receiver a little slower than ingest: a backlog builds up
    acked: set[str] = set()
    try:
        with eventrelay_process(tmp_path, env=ENV) as server:
            token = (tmp_path / ".eventrelay" / "owner-token").read_text().strip()
            write_key = await _configure(server.base_url, token, sink)
            stop = asyncio.Event()
            loaders = [
                asyncio.create_task(_load(server.base_url, write_key, acked, stop))
                for _ in range(2)
            ]
            await sink.wait_for(lambda: len(sink.requests) > 100, timeout=20)
            await asyncio.sleep(0.2)
            server.proc.send_signal(sig)
            code = await asyncio.to_thread(server.proc.wait, 60)
            stop.set()
            await asyncio.gather(*loaders)
            if sig == signal.SIGTERM:
                # uvicorn re-raises the signal after its graceful shutdown.
                assert code in (0, -signal.SIGTERM)
                log = (tmp_path / f"server-{server.base_url.rsplit(':', 1)[1]}.log").read_text()
                assert "Application shutdown complete" in log
        delivered_before = {r.json()["messageId"] for r in sink.requests}
        assert acked, "the load generator got acknowledgements"
        with eventrelay_process(tmp_path, env=ENV):
            await sink.wait_for(
                lambda: acked <= {r.json()["messageId"] for r in sink.requests}, timeout=60
            )
        ids_per_event: dict[str, set[str]] = defaultdict(set)
        for request in sink.requests:
            ids_per_event[request.json()["messageId"]].add(request.headers["webhook-id"])
        assert all(len(ids) == 1 for ids in ids_per_event.values())
        assert len(acked) > 100
        # Most events were delivered before the stop; the rest after the restart.
        assert delivered_before
    finally:
        await sink.close()


async def test_sigkill_mid_load_loses_no_acknowledged_event(tmp_path: Path) -> None:
    await _run(tmp_path, signal.SIGKILL)


async def test_sigterm_drains_and_loses_nothing(tmp_path: Path) -> None:
    await _run(tmp_path, signal.SIGTERM)
