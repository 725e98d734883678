"""The scale-out shape on a 3-node JetStream cluster (replicas 3): losing any one node under
ingest load, first the stream's leader and then the server leading an integration's consumer,
answers no 503 (ingest retries through the election, the clients reconnect to the other nodes)
and loses no acknowledged event, and few are delivered twice. Prints the election time and
the share of duplicates.
"""

from __future__ import annotations

import time
from pathlib import Path

import nats
import pytest

from tests.scaleout.test_cluster import (
    ENV,
    Load,
    create_source,
    create_webhook,
    eventually,
    ids_at,
    received_at,
)
from tests.support.cluster import cluster
from tests.support.nats import NatsCluster
from tests.support.sink import Sink

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cluster")]

STREAM = "EVENTRELAY_DELIVER_LOG"  # the log stream (settings.nats_stream + "_LOG")
# Ingest's publish deadline stays the default (longer than an election).
CLUSTER_ENV = ENV | {"EVENTRELAY_NATS_REPLICAS": "3"}


async def leaders(nodes: NatsCluster, integration_id: str) -> tuple[str, str]:
    """(stream leader, consumer leader) as the cluster reports them; "" while electing."""
    nc = await nats.connect(servers=[n.url for n in nodes.nodes if n.running], connect_timeout=2)
    try:
        js = nc.jetstream(timeout=2)
        try:
            stream = (await js.stream_info(STREAM)).cluster
            consumer = (await js.consumer_info(STREAM, "er-" + integration_id)).cluster
        except Exception:
            return "", ""
        return (stream.leader if stream else "") or "", (consumer.leader if consumer else "") or ""
    finally:
        await nc.close()


async def all_current(nodes: NatsCluster) -> bool:
    """Every replica of the stream is back and caught up (another node may be lost now)."""
    nc = await nats.connect(servers=[n.url for n in nodes.nodes if n.running], connect_timeout=2)
    try:
        info = await nc.jetstream(timeout=2).stream_info(STREAM)
    except Exception:
        return False
    finally:
        await nc.close()
    replicas = (info.cluster.replicas if info.cluster else None) or []
    return len(replicas) == 2 and all(r.current and not r.offline for r in replicas)


async def test_losing_any_one_node_of_three_answers_no_503_and_loses_nothing(
    tmp_path: Path,
) -> None:
    sink = await Sink().start()
    try:
        async with cluster(tmp_path, CLUSTER_ENV, apis=1, workers=2, nats_nodes=3) as c:
            nodes = c.nats
            assert isinstance(nodes, NatsCluster)
            async with c.admin() as admin:
                source = await create_source(admin)
                hook = await create_webhook(admin, source["id"], sink.url + "/hook", batch=True)
            # The client waits longer than ingest's publish deadline: a slow answer is seen.
            load = Load(c, source["write_key"], timeout=30).start()
            await sink.wait_for(lambda: len(ids_at(sink, "/hook")) > 300, timeout=30)

            # 1. The stream's leader is lost.
            stream_leader, _ = await leaders(nodes, hook)
            assert stream_leader
            nodes.node(stream_leader).kill()
            killed_at = time.monotonic()

            async def new_leader() -> bool:
                leader, _ = await leaders(nodes, hook)
                return bool(leader) and leader != stream_leader

            await eventually(new_leader, timeout=30, what="a new stream leader")
            election = time.monotonic() - killed_at
            acked = len(load.acked)
            await eventually(lambda: len(load.acked) > acked + 300, timeout=30, what="ingest")
            nodes.node(stream_leader).start()
            await eventually(lambda: all_current(nodes), timeout=60, what="replicas caught up")

            # 2. The server leading the integration's consumer is lost.
            _, consumer_leader = await leaders(nodes, hook)
            assert consumer_leader
            nodes.node(consumer_leader).kill()
            acked = len(load.acked)
            await eventually(lambda: len(load.acked) > acked + 300, timeout=30, what="ingest")
            await load.stop()
            acked_ids = set(load.acked)
            await sink.wait_for(lambda: acked_ids <= ids_at(sink, "/hook"), timeout=90)
        received = received_at(sink, "/hook")
        duplicates = sum(received.values()) - len(received)
        print(
            f"3-node cluster: {len(acked_ids)} events acknowledged, stream leader elected in"
            f" {election:.1f}s, slowest ingest answer {load.slowest:.1f}s, answers"
            f" {dict(load.answers)}, {duplicates} duplicates"
            f" ({100 * duplicates / len(acked_ids):.2f}%)"
        )
        assert set(load.answers) == {200}, f"every ingest request answered 200: {load.answers}"
        assert not acked_ids - set(received)
        # What the lost node knew of acknowledgements the workers had announced to each other
        # (queue/nats_acked.py): 0 in three runs, 1.0-3.1% before; a batch in flight whose
        # acknowledgement outlasts the ack wait may still come twice.
        assert duplicates <= 0.01 * len(acked_ids) + 200
    finally:
        await sink.close()
