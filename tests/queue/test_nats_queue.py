"""JetStream specifics beyond the shared contract."""

from __future__ import annotations

import time
from pathlib import Path

import nats

from eventrelay.queue.nats import _ack_metadata
from tests.support.nats import nats_server


async def test_ack_subject_parsing_matches_the_client_library(tmp_path: Path) -> None:
    with nats_server(tmp_path / "nats") as server:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await js.add_stream(name="META", subjects=["meta.>"])
            for _ in range(3):
                await js.publish("meta.a", b"{}")
            sub = await js.pull_subscribe("meta.a", durable="d")
            first = await sub.fetch(3, timeout=2)
            for msg in first[:2]:
                await msg.nak()
            again = await sub.fetch(2, timeout=2)
            for msg in [*first, *again]:
                published_at, attempts = _ack_metadata(msg)
                assert attempts == msg.metadata.num_delivered
                assert abs(published_at - msg.metadata.timestamp.timestamp()) < 1e-3
                assert abs(published_at - time.time()) < 30
            assert {_ack_metadata(m)[1] for m in again} == {2}
        finally:
            await nc.close()
