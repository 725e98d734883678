"""`eventrelay serve --processes 2`: two HTTP processes share the port on the embedded SQLite
shape; one of them delivers. Events taken by either process arrive; a change made through one
process is seen by the other; SIGTERM stops both."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.process import eventrelay_process
from tests.support.sink import Sink

pytestmark = pytest.mark.slow

ENV = {"EVENTRELAY_ALLOW_PRIVATE_TARGETS": "1", "EVENTRELAY_LOG_LEVEL": "INFO"}


def http_children(pid: int) -> list[int]:
    """The server processes uvicorn spawned (not multiprocessing's resource tracker)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [
        int(child)
        for child in text.split()
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


async def test_two_processes_share_the_port_and_deliver_everything(tmp_path: Path) -> None:
    sink = await Sink().start()
    try:
        with eventrelay_process(tmp_path, ("serve", "--processes", "2"), env=ENV) as server:
            token = (tmp_path / ".eventrelay" / "owner-token").read_text().strip()
            admin = httpx.AsyncClient(
                base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}
            )
            async with admin:
                source = (await admin.post("/v1/admin/sources", json={"name": "web"})).json()
                r = await admin.post(
                    "/v1/admin/integrations",
                    json={
                        "source_id": source["id"],
                        "type": "webhook",
                        "name": "hook",
                        "config": {"url": sink.url + "/hook"},
                    },
                )
                assert r.status_code == 201, r.text
            # The sibling that did not create the integration hears of it within a second.
            await asyncio.sleep(2)
            ids: set[str] = set()
            async with httpx.AsyncClient(
                base_url=server.base_url, auth=(source["write_key"], "")
            ) as ingest:
                for _ in range(30):
                    batch = [
                        {
                            "type": "track",
                            "userId": "u",
                            "event": "E",
                            "messageId": str(uuid.uuid4()),
                        }
                        for _ in range(10)
                    ]
                    # A fresh connection each time, so the kernel spreads them over both.
                    r = await ingest.post(
                        "/v1/batch", json={"batch": batch}, headers={"Connection": "close"}
                    )
                    assert r.status_code == 200
                    ids.update(e["messageId"] for e in batch)
            assert len(http_children(server.proc.pid)) == 2
            await sink.wait_for(lambda: ids <= {e["messageId"] for e in sink.events()}, timeout=20)
            server.proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(server.proc.wait, 60) in (0, -signal.SIGTERM)
    finally:
        await sink.close()
