"""Publishing to JetStream through a leader election or the loss of a server.

A replicated stream has no leader for a few seconds after its leader's server is lost: a
publish then times out or is answered "no responders" / 503. The connection to a server that went
away is re-made to another server of the cluster (the client is given all of them). Both are
transient, so the messages JetStream has not acknowledged are published again, with the same
`Nats-Msg-Id` (JetStream's dedup window stores each once even when the first attempt was stored
but its acknowledgement was lost), until `deadline` seconds have passed; only then does the
caller fail (the API answers 503). Anything else JetStream refuses (a bad request, a message too
large) fails at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js.client import JetStreamContext

log = logging.getLogger("eventrelay.queue")

# One attempt waits this long for JetStream's acknowledgements (an election takes seconds;
# a stored-but-unacknowledged message is deduplicated on the next attempt).
ATTEMPT_TIMEOUT = 2.0
# Pause between attempts, growing to the cap: an election is not over in milliseconds.
BACKOFF_FIRST, BACKOFF_CAP = 0.05, 0.5
MSG_ID_HEADER = "Nats-Msg-Id"

# Failures that say "not now": no stream leader, no server answering, connection gone.
_TRANSIENT: tuple[type[BaseException], ...] = (
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
    nats.errors.NoRespondersError,
    nats.errors.TimeoutError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    TimeoutError,
    ConnectionError,
)


class Outgoing(NamedTuple):
    subject: str
    data: bytes
    msg_id: str


def transient(exc: BaseException) -> bool:
    return isinstance(exc, _TRANSIENT)


async def publish_until_stored(
    nc: Client, js: JetStreamContext, messages: Sequence[Outgoing], deadline: float
) -> int:
    """Publish every message and wait until JetStream acknowledged each; returns how many
    attempts that took. Raises the last transient error once `deadline` seconds have passed, or
    at once any other error."""
    began = time.monotonic()
    ends = began + deadline
    pending = list(messages)
    attempt = 0
    pause = BACKOFF_FIRST
    while True:
        attempt += 1
        error: BaseException | None = None
        try:
            await _connected(nc, ends)
            pending, error = await _attempt(js, pending, ends)
        except Exception as exc:
            if not transient(exc):
                raise
            error = exc
        if not pending:
            if attempt > 1:
                waited = round(time.monotonic() - began, 2)
                log.warning(
                    "publish stored after retrying",
                    extra={"attempts": attempt, "waited_seconds": waited},
                )
            return attempt
        assert error is not None
        left = ends - time.monotonic()
        if left <= 0:
            raise error
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, BACKOFF_CAP)


async def _connected(nc: Client, ends: float) -> None:
    """Wait for the client to be connected (reconnecting to another server of the cluster)
    rather than buffer publishes on a connection that may never come back."""
    while not nc.is_connected:
        if nc.is_closed:
            raise nats.errors.ConnectionClosedError
        if time.monotonic() >= ends:
            raise ConnectionError("NATS is not connected")
        await asyncio.sleep(0.02)


async def _attempt(
    js: JetStreamContext, messages: Sequence[Outgoing], ends: float
) -> tuple[list[Outgoing], BaseException | None]:
    """One pass: publish all, wait for their acknowledgements; returns the messages still not
    stored and a transient error that says why (any other error is raised)."""
    futures: list[asyncio.Future[Any]] = []
    sent: list[Outgoing] = []
    error: BaseException | None = None
    for message in messages:
        try:
            futures.append(
                await js.publish_async(
                    message.subject, message.data, headers={MSG_ID_HEADER: message.msg_id}
                )
            )
            sent.append(message)
        except Exception as exc:
            if not transient(exc):
                _cancel(futures)
                raise
            error = exc
            break
    unsent = list(messages[len(sent) :])
    if not futures:
        return unsent, error
    timeout = max(0.05, min(ATTEMPT_TIMEOUT, ends - time.monotonic()))
    _, waiting = await asyncio.wait(futures, timeout=timeout)
    _cancel(waiting)
    failed: list[Outgoing] = []
    for message, future in zip(sent, futures, strict=True):
        if future.cancelled():
            failed.append(message)
            error = error or TimeoutError("no acknowledgement from JetStream")
            continue
        failure = future.exception()
        if failure is None:
            continue
        if not transient(failure):
            raise failure
        failed.append(message)
        error = error or failure
    return failed + unsent, error


def _cancel(futures: Sequence[asyncio.Future[Any]] | set[asyncio.Future[Any]]) -> None:
    for future in futures:
        future.cancel()
