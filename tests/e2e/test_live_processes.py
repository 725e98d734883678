"""The live view of `eventrelay serve --processes 2` (embedded, one data directory): a stream
served by one process shows the events taken by either (Unix-socket fan-out)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.live import follow
from tests.support.process import eventrelay_process

pytestmark = pytest.mark.slow


async def test_a_stream_shows_the_events_of_every_process(tmp_path: Path) -> None:
    with eventrelay_process(tmp_path, ("serve", "--processes", "2")) as server:
        token = (tmp_path / ".eventrelay" / "owner-token").read_text().strip()
        async with httpx.AsyncClient(
            base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}
        ) as admin:
            source = (await admin.post("/v1/admin/sources", json={"name": "web"})).json()
        sent: set[str] = set()
        async with follow(server.base_url, source["id"], token) as follower:

            async def send_one() -> str | None:
                message_id = str(uuid.uuid4())
                body = {"userId": "u", "event": "E", "messageId": message_id}
                # A fresh connection each, in parallel, so both processes take some.
                async with httpx.AsyncClient(
                    base_url=server.base_url, auth=(source["write_key"], "")
                ) as client:
                    r = await client.post("/v1/track", json=body)
                if r.status_code == 401:  # that process has not heard of the source yet
                    return None
                assert r.status_code == 200, r.text
                return message_id

            # Until both processes know the new source (the sibling hears of it within a
            # second), then a round whose events both took.
            for _ in range(100):
                results = await asyncio.gather(*(send_one() for _ in range(20)))
                if all(results):
                    sent.update(m for m in results if m)
                    break
                await asyncio.sleep(0.1)
            assert len(sent) == 20

            def seen() -> set[str]:
                return {d["message_id"] for k, d in follower.messages if k == "event"}

            try:
                await follower.wait_for(lambda _d: sent <= seen(), timeout=30)
            except TimeoutError:
                log = "".join(p.read_text()[-3000:] for p in tmp_path.glob("server-*.log"))
                raise AssertionError(
                    f"{len(sent - seen())} of {len(sent)} events not shown; stream ended: "
                    f"{follower.ended.is_set()}; sockets: "
                    f"{sorted(p.name for p in (tmp_path / '.eventrelay').glob('live-*'))}\n{log}"
                ) from None
