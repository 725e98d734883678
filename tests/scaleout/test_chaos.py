"""Random SIGKILLs of the API, a worker or nats-server under load (scale-out shape, 1 API, 2
workers, batched webhook): every event answered 200 is delivered, and few are delivered twice.

Each killed process is started again at once (nats-server on its port and store). The load
resends a batch that got no 200 with the same messageIds, as the SDKs do. Each duplicate is
charged to the first kill between its first and its second delivery (the kill that found it in
flight), so the print says where they come from.

The suite runs a short version; the issue's figure is
`EVENTRELAY_CHAOS_EVENTS=100000 EVENTRELAY_CHAOS_KILLS=20 EVENTRELAY_CHAOS_SEED=7
.venv/bin/pytest tests/scaleout/test_chaos.py -s` (one machine, 2 cores shared, ack wait 3 s).
Duplicates, seed 7 / seed 11:
- at first 4.17% / -, then 1.36% once a batch filling past the ack wait was renewed
  (queue/nats.py `pull`);
- then 1.40% and 2.59% / 1.69%, nearly all from nats-server kills: a single server writes a
  consumer's state at most ten times a second, and a SIGKILLed one hands out again on restart
  the batches it delivered and saw acknowledged in its last ~100 ms (up to ten batches a kill,
  replayed ~1 s after it, not after the ack wait);
- with the workers announcing what they acknowledge (queue/nats_acked.py): 0.60% and 0.30%
  (100-200 a nats-server kill: batches in flight at it, handed to the other worker before
  their holder had reconnected to announce them);
- now, pulls also waiting a second after a reconnect: 0.20% / 0.40%, none from the 4 / 3
  nats-server kills; what remains is the batches a killed worker had in flight (one or two a
  kill, redelivered after the ack wait).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.scaleout.test_cluster import ENV, create_source, create_webhook, received_at
from tests.support.cluster import Cluster, cluster
from tests.support.nats import NatsServer
from tests.support.sink import Sink

EVENTS = int(os.environ.get("EVENTRELAY_CHAOS_EVENTS", "6000"))
KILLS = int(os.environ.get("EVENTRELAY_CHAOS_KILLS", "6"))
BATCH = 100
SENDERS = 4  # batches in flight at once
CONCURRENCY = 4  # EVENTRELAY_DELIVERY_CONCURRENCY's default: batches a worker has in flight
# Share of duplicates allowed at the sink, when set (a few kills of a small run make the share
# jump by whole batches, so the suite checks where duplicates come from instead).
_MAX = os.environ.get("EVENTRELAY_CHAOS_MAX_DUPLICATES")
MAX_DUPLICATES = float(_MAX) if _MAX else None
VICTIMS = ("api", "w1", "w2", "nats")
KILL_SLACK = 0.1

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("cluster"),
    pytest.mark.timeout(300 + EVENTS // 50),
]


class Sender:
    """Sends `total` events in batches through the (current) API process; a batch answered
    anything but 200 is sent again, same ids, until it is."""

    def __init__(self, c: Cluster, write_key: str, total: int) -> None:
        self.c = c
        self.write_key = write_key
        self.total = total
        self.acked: set[str] = set()
        self.answers: Counter[int | str] = Counter()
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with httpx.AsyncClient(auth=(self.write_key, ""), timeout=15) as client:
            await asyncio.gather(*(self._send(client) for _ in range(SENDERS)))

    async def _send(self, client: httpx.AsyncClient) -> None:
        while len(self.acked) < self.total:
            ids = [str(uuid.uuid4()) for _ in range(BATCH)]
            batch = [{"type": "track", "userId": "u", "event": "E", "messageId": i} for i in ids]
            while True:
                try:
                    # Between a killed API process and its replacement there is none.
                    base = self.c.apis[0].base_url if self.c.apis else "http://127.0.0.1:9"
                    r = await client.post(base + "/v1/batch", json={"batch": batch})
                    self.answers[r.status_code] += 1
                    if r.status_code == 200:
                        self.acked.update(ids)
                        break
                except httpx.HTTPError as exc:
                    self.answers[type(exc).__name__] += 1
                await asyncio.sleep(0.1)

    def start(self) -> Sender:
        self.task = asyncio.create_task(self._run())
        return self


def restart(c: Cluster, victim: str) -> None:
    """SIGKILL the victim and start it again (a new API process takes the old one's place)."""
    if victim == "api":
        c.apis.pop(0).stop(signal.SIGKILL)
        c.start_api()
    elif victim == "nats":
        assert isinstance(c.nats, NatsServer)
        c.nats.kill()
        c.nats.start()
    else:
        c.kill_worker(victim)
        c.start_worker(victim)


async def test_random_sigkills_lose_nothing_and_duplicate_little(tmp_path: Path) -> None:
    seed = int(os.environ.get("EVENTRELAY_CHAOS_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    sink = await Sink().start()
    kills: list[tuple[float, str]] = []
    try:
        async with cluster(tmp_path, ENV, apis=1, workers=2) as c:
            async with c.admin() as admin:
                source = await create_source(admin)
                await create_webhook(
                    admin, source["id"], sink.url + "/hook", batch=True, batch_size=BATCH
                )
            sender = Sender(c, source["write_key"], EVENTS).start()
            started = time.monotonic()
            for i in range(KILLS):
                # Spread the kills over the load: kill i once this share is acknowledged.
                due = EVENTS * (i + 1) // (KILLS + 1)
                while len(sender.acked) < due:
                    assert sender.task is not None and not sender.task.done()
                    await asyncio.sleep(0.02)
                await asyncio.sleep(rng.uniform(0, 0.3))
                victim = rng.choice(VICTIMS)
                kills.append((time.time(), victim))
                await asyncio.to_thread(restart, c, victim)
            assert sender.task is not None
            await sender.task
            sending = time.monotonic() - started
            acked = set(sender.acked)
            await sink.wait_for(lambda: acked <= set(received_at(sink, "/hook")), timeout=180)
            await asyncio.sleep(2 * float(ENV["EVENTRELAY_NATS_ACK_WAIT_SECONDS"]))
        received = received_at(sink, "/hook")
        duplicates = sum(received.values()) - len(received)
        by_victim = _charge(sink, kills)
        print(
            f"seed {seed}: {len(acked)} events in {sending:.0f}s, {len(kills)} kills"
            f" {dict(Counter(v for _, v in kills))}; duplicates {duplicates}"
            f" ({100 * duplicates / len(acked):.2f}%) by the kill that found them in flight {dict(by_victim)};"
            f" answers {dict(sender.answers)}"
        )
        assert not acked - set(received), "events answered 200 were lost"
        # Only a crash repeats an event: what a killed worker had in flight (at most its
        # concurrent batches) or what nats-server had not yet written of its acknowledgements.
        worker_kills = sum(1 for _, v in kills if v.startswith("w"))
        in_flight = by_victim["w1"] + by_victim["w2"]
        assert in_flight <= worker_kills * CONCURRENCY * BATCH
        if MAX_DUPLICATES is not None:
            # The measured run (quiet machine): a repeat with no crash between is a defect. In
            # the suite a loaded machine can hold a batch past the short ack wait, so there the
            # figure is printed, not asserted.
            assert by_victim["none"] <= 0.002 * len(acked), "delivered twice with no crash between"
            assert duplicates <= MAX_DUPLICATES * len(acked)
    finally:
        await sink.close()


def _charge(sink: Sink, kills: list[tuple[float, str]]) -> Counter[str]:
    """Each repeated delivery charged to the first kill between the event's first delivery and
    this one: the kill found it in flight. "none" when no kill came between (its lease ran out
    on a live worker, or an acknowledgement was lost)."""
    first: dict[str, float] = {}
    charged: Counter[str] = Counter()
    for request in sink.requests:
        if request.path != "/hook":
            continue
        body = request.json()
        for event in body if isinstance(body, list) else [body]:
            message_id = event["messageId"]
            if message_id not in first:
                first[message_id] = request.at
                continue
            # A kill is recorded just before its SIGKILL lands: a batch the sink saw up to
            # KILL_SLACK seconds after the record was sent before the process died.
            between = [v for at, v in kills if first[message_id] - KILL_SLACK <= at <= request.at]
            charged[between[0] if between else "none"] += 1
    return charged
