"""Publishing to JetStream: pipelined, and through a leader election or the loss of a server.

Ingest's hot path. Every message of a request goes out at once and their acknowledgements are
awaited together. The protocol lines are written directly (`HPUB`, headers preformatted) and
the acknowledgements arrive on one inbox per connection, matched by a counter in the reply
subject: nats-py's `publish_async` spends most of its per-message time building a header dict
into bytes, validating it, and making a future, a token and a `PubAck` per message.

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
import itertools
import json
import logging
import time
from collections.abc import Sequence
from typing import NamedTuple

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.errors import APIError

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
    # Further headers, preformatted: b"Name: value\r\n" each (or b"").
    headers: bytes = b""


def transient(exc: BaseException) -> bool:
    return isinstance(exc, _TRANSIENT)


def header_line(name: str, value: str) -> bytes:
    return f"{name}: {value}\r\n".encode()


class _Attempt:
    """The acknowledgements one pass waits for: `failures[i]` is set for a refused message,
    `done` once every message has its answer."""

    __slots__ = ("answered", "done", "failures", "left")

    def __init__(self, size: int) -> None:
        self.left = size
        self.answered = bytearray(size)
        self.failures: dict[int, BaseException] = {}
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def answer(self, index: int, failure: BaseException | None) -> None:
        if self.answered[index]:
            return
        self.answered[index] = 1
        if failure is not None:
            self.failures[index] = failure
        self.left -= 1
        if self.left == 0 and not self.done.done():
            self.done.set_result(None)


class Publisher:
    """Pipelined JetStream publishes on one connection (one inbox for every acknowledgement)."""

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._inbox = ""
        self._sub: Subscription | None = None
        self._attempts: dict[int, _Attempt] = {}
        self._ids = itertools.count(1)

    async def _ensure_inbox(self) -> None:
        if self._sub is None:
            self._inbox = self._nc.new_inbox() + "."
            self._sub = await self._nc.subscribe(self._inbox + "*.*", cb=self._on_ack)

    async def _on_ack(self, msg: Msg) -> None:
        attempt_id, _, index = msg.subject[len(self._inbox) :].partition(".")
        attempt = self._attempts.get(int(attempt_id))
        if attempt is None:
            return  # an attempt given up on (timed out): its messages go again
        attempt.answer(int(index), _failure(msg))

    async def attempt(
        self, messages: Sequence[Outgoing], ends: float
    ) -> tuple[list[Outgoing], BaseException | None]:
        """One pass: publish all, wait for their acknowledgements; returns the messages still
        not stored and a transient error that says why (any other error is raised)."""
        await self._ensure_inbox()
        nc = self._nc
        if nc.is_closed:
            raise nats.errors.ConnectionClosedError
        max_payload = nc.max_payload
        attempt_id = next(self._ids)
        reply = f"{self._inbox}{attempt_id}."
        lines: list[bytes] = []
        for i, m in enumerate(messages):
            msg_id = m.msg_id.encode()
            if b"\n" in msg_id or b"\r" in msg_id:  # ingest refuses these; a header must not
                raise ValueError(f"a line break in message id {m.msg_id!r}")
            hdr = b"NATS/1.0\r\nNats-Msg-Id: %s\r\n%s\r\n" % (msg_id, m.headers)
            size = len(hdr) + len(m.data)
            if size > max_payload:
                raise nats.errors.MaxPayloadError
            head = f"HPUB {m.subject} {reply}{i} {len(hdr)} {size}\r\n"
            lines += (head.encode(), hdr, m.data, b"\r\n")
        state = self._attempts[attempt_id] = _Attempt(len(messages))
        try:
            # nats-py has no public call for preformatted protocol lines: this is what its
            # `publish` ends with (buffered while reconnecting, written by its flusher).
            await nc._send_command(b"".join(lines))
            if nc._flush_queue is not None and nc._flush_queue.empty():
                await nc._flush_pending()
            timeout = max(0.05, min(ATTEMPT_TIMEOUT, ends - time.monotonic()))
            await asyncio.wait([state.done], timeout=timeout)
        finally:
            del self._attempts[attempt_id]
        failed: list[Outgoing] = []
        error: BaseException | None = None
        if not state.left and not state.failures:
            return [], None
        for i, message in enumerate(messages):
            failure = state.failures.get(i)
            if failure is not None and not transient(failure):
                raise failure
            if failure is not None or not state.answered[i]:
                failed.append(message)
                error = error or failure
        return failed, error or TimeoutError("no acknowledgement from JetStream")


def _failure(msg: Msg) -> BaseException | None:
    data = msg.data
    if not data:
        # A status message: 503 "no responders" (no stream leader yet), or another status.
        status = (msg.headers or {}).get("Status", "")
        if status == "503":
            return nats.js.errors.NoStreamResponseError()
        return nats.errors.Error(f"JetStream answered status {status!r}")
    if b'"error"' not in data:
        return None
    try:
        APIError.from_error(json.loads(data)["error"])
    except APIError as exc:
        return exc
    return None


async def publish_until_stored(
    publisher: Publisher, messages: Sequence[Outgoing], deadline: float
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
            await _connected(publisher._nc, ends)
            pending, error = await publisher.attempt(pending, ends)
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
