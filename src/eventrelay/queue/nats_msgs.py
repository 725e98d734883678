"""JetStream messages as queue deliveries, and settling them (`queue/nats.py`'s helpers,
shared with the legacy drain, `nats_legacy.py`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext

from eventrelay.queue.base import Delivery
from eventrelay.queue.nats_publish import MSG_ID_HEADER

# Streams a message is not for (their integration was paused when it was accepted).
SKIP_HEADER = "Eventrelay-Skip"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")  # one subject token: a log or stream name


class NatsDelivery:
    __slots__ = ("attempts", "data", "message_id", "msg", "published_at")

    def __init__(self, msg: Msg, id_prefix: str) -> None:
        self.msg = msg
        self.data = msg.data
        header = (msg.headers or {}).get(MSG_ID_HEADER, "")
        self.message_id = header.removeprefix(id_prefix)
        self.published_at, self.attempts = ack_metadata(msg)


def ack_metadata(msg: Msg) -> tuple[float, int]:
    """(publish time, delivery count) from the JetStream ack subject, read directly: nats-py's
    `msg.metadata` builds datetimes and dataclasses per message, a measurable share of a
    worker's time at thousands of events per second. The subject is
    `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ns>.<pending>`, or with domain and
    account hash after `$JS.ACK` (12 tokens)."""
    tokens = (msg.reply or "").split(".")
    if len(tokens) == 9:
        return int(tokens[7]) / 1e9, int(tokens[4])
    if len(tokens) >= 12:
        return int(tokens[9]) / 1e9, int(tokens[6])
    metadata = msg.metadata
    return metadata.timestamp.timestamp(), int(metadata.num_delivered)


def skips(msg: Msg, stream: str) -> bool:
    skip = msg.headers.get(SKIP_HEADER) if msg.headers else None
    return skip is not None and stream in skip.split(",")


def durable(stream: str) -> str:
    return "er-" + stream


def token(name: str) -> str:
    if not _TOKEN.match(name):
        raise ValueError(f"not usable in a NATS subject: {name!r}")
    return name


async def settle(
    nc: Client | None, deliveries: Sequence[Delivery], how: str, delay: float = 0.0
) -> None:
    sent = False
    for delivery in deliveries:
        assert isinstance(delivery, NatsDelivery)
        msg = delivery.msg
        if msg.is_acked:
            continue  # settled already: a second answer would raise (release after ack)
        sent = True
        if how == "ack":
            await msg.ack()
        elif how == "progress":
            await msg.in_progress()
        elif how == "nak":
            await msg.nak(delay=delay)
        else:
            await msg.term()
    if nc is not None and sent:
        # Make sure the acknowledgements reached the server before reporting them done.
        await nc.flush()


async def terminate_older(
    nc: Client | None, sub: JetStreamContext.PullSubscription, stream: str, cutoff: float
) -> int:
    """Terminate what the consumer hands out that was published before `cutoff`, up to the
    first younger message; returns how many. Messages a worker holds are not handed out."""
    count = 0
    while True:
        try:
            got = await sub.fetch(batch=200, timeout=1.0)
        except (TimeoutError, nats.errors.TimeoutError):
            return count
        mine = []
        for msg in got:
            if skips(msg, stream):
                await msg.ack()  # never this stream's: not counted
            else:
                mine.append(NatsDelivery(msg, ""))
        old = [d for d in mine if d.published_at < cutoff]
        young = [d for d in mine if d.published_at >= cutoff]
        await settle(nc, old, "term")
        count += len(old)
        if young:
            # Not ours to deliver: straight back (their attempt count has grown by one).
            await settle(nc, young, "nak")
            return count
