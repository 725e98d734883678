"""JetStream messages as queue deliveries, and settling them (`queue/nats.py`'s helpers,
shared with the legacy drain, `nats_legacy.py`)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence

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
    __slots__ = ("attempts", "consumer", "data", "message_id", "msg", "published_at", "seq")

    def __init__(self, msg: Msg, id_prefix: str, on_log: bool = True) -> None:
        self.msg = msg
        self.data = msg.data
        header = (msg.headers or {}).get(MSG_ID_HEADER, "")
        self.message_id = header.removeprefix(id_prefix)
        self.consumer, seq, self.published_at, self.attempts = ack_position(msg)
        # Its sequence in the log stream; 0 off the log (the legacy stream's consumers have
        # the same names, and its sequences say nothing of the log's).
        self.seq = seq if on_log else 0


def ack_position(msg: Msg) -> tuple[str, int, float, int]:
    """(consumer, stream sequence, publish time, delivery count) from the JetStream ack
    subject, read directly: nats-py's `msg.metadata` builds datetimes and dataclasses per
    message, a measurable share of a worker's time at thousands of events per second. The
    subject is `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ns>.<pending>`, or with
    domain and account hash after `$JS.ACK` (12 tokens)."""
    tokens = (msg.reply or "").split(".")
    if len(tokens) == 9:
        return tokens[3], int(tokens[5]), int(tokens[7]) / 1e9, int(tokens[4])
    if len(tokens) >= 12:
        return tokens[5], int(tokens[7]), int(tokens[9]) / 1e9, int(tokens[6])
    metadata = msg.metadata
    return (
        metadata.consumer or "",
        int(metadata.sequence.stream),
        metadata.timestamp.timestamp(),
        int(metadata.num_delivered),
    )


def ack_metadata(msg: Msg) -> tuple[float, int]:
    """(publish time, delivery count) of a JetStream message."""
    _, _, published_at, attempts = ack_position(msg)
    return published_at, attempts


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
    nc: Client | None,
    deliveries: Sequence[Delivery],
    how: str,
    delay: float = 0.0,
    announce: Callable[[Sequence[Delivery]], Awaitable[None]] | None = None,
) -> None:
    """Answer JetStream for each delivery; `announce` is told of the settled ones before the
    flush that sends them all (nats_acked.py)."""
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
    if announce is not None and sent:
        await announce(deliveries)
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
