"""uvicorn's httptools protocol with the limits an Internet-facing HTTP server needs.

uvicorn (0.54) has a keep-alive timeout and a concurrency limit that answers 503 to every
request past it (health checks included), but no limit on the size of a request head, no
deadline for receiving one (a client trickling a byte every few seconds holds a connection
forever: slowloris), no deadline for a request body, and it never times out a connection that
sends nothing at all. This subclass adds, per connection:

- idle: a connection with no request in progress is closed after `keepalive_timeout` (uvicorn
  does this only after a response; here also right after the connection opens);
- head: the request line and headers must arrive within `header_timeout` of their first byte
  (408) and take at most `max_header_bytes` (431), the request target at most
  `max_request_line_bytes` (414); bytes beyond the budget are never buffered;
- body: a request body must be complete within `body_timeout` of its headers (408);
- connections: at most `max_connections` per process; when full, the connection idle the
  longest is closed to admit a new one, and only when none is idle is the new one refused (503),
  so idle connections cannot lock out health checks or clients.

It relies on uvicorn's documented `http=<protocol class>` option and on the parser callbacks
of `HttpToolsProtocol`; tests/server/test_limits.py runs a real server through every limit.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass
from typing import Any

import httptools
import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from eventrelay.settings import Settings

log = logging.getLogger("eventrelay.server")
_IDLE, _HEAD, _BODY = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Limits:
    max_header_bytes: int
    max_request_line_bytes: int
    header_timeout: float
    body_timeout: float
    keepalive_timeout: int
    max_connections: int

    @classmethod
    def for_process(cls, settings: Settings) -> Limits:
        """The limits from the settings, with room for the connections: the soft limit on open
        files is raised as far as the hard limit allows (1,024 by default on Linux, fewer than
        a busy server needs), and `max_connections` is lowered to fit if it cannot be."""
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_request_line_bytes=settings.max_request_line_bytes,
            header_timeout=settings.header_timeout_seconds,
            body_timeout=settings.body_timeout_seconds,
            keepalive_timeout=settings.keepalive_timeout_seconds,
            max_connections=_fit_open_files(settings.max_connections),
        )


# Files a process needs besides client connections: database, queue, vendor connections, logs.
_OTHER_FILES = 512


def _fit_open_files(connections: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + _OTHER_FILES
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new_soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
            soft = new_soft
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < wanted:
        fitted = max(soft - _OTHER_FILES, 64)
        log.warning(
            "open-file limit too low for max_connections; lowered",
            extra={"max_connections": fitted, "open_files": soft},
        )
        return fitted
    return connections


_configured: Limits | None = None


def configure(limits: Limits) -> None:
    """Set the limits of this process's server (`serve --processes` children read them from
    the environment instead: they start from it)."""
    global _configured
    _configured = limits


def _limits() -> Limits:
    global _configured
    if _configured is None:
        _configured = Limits.for_process(Settings())
    return _configured


class _Refuse(Exception):
    """Raised in a parser callback to stop parsing a request that breaks a limit."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


_REASONS = {
    408: (b"Request Timeout", "request_timeout", "the request was not received in time"),
    414: (b"URI Too Long", "uri_too_long", "the request target is too long"),
    431: (
        b"Request Header Fields Too Large",
        "headers_too_large",
        "the request line and headers are too large",
    ),
    503: (b"Service Unavailable", "server_busy", "too many connections; retry shortly"),
}


def _response(status: int) -> bytes:
    reason, code, message = _REASONS[status]
    body = orjson.dumps({"error": {"code": code, "message": message}})
    head = (
        f"HTTP/1.1 {status} ".encode()
        + reason
        + b"\r\ncontent-type: application/json\r\nconnection: close\r\n"
        + (b"retry-after: 1\r\n" if status == 503 else b"")
        + f"content-length: {len(body)}\r\n\r\n".encode()
    )
    return head + body


# Idle connections of each server, oldest first (dicts keep insertion order).
_idle: dict[int, dict[GuardedHttpToolsProtocol, None]] = {}


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = _limits()
        self.timeout_keep_alive = self.limits.keepalive_timeout
        self._idle_set = _idle.setdefault(id(server_state), {})
        self._phase = _IDLE
        self._head_bytes = 0
        self._deadline: asyncio.TimerHandle | None = None

    # --- connections -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections and not self._evict_idle():
            self._refuse(503)
            return
        self._become_idle()
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def _evict_idle(self) -> bool:
        for oldest in self._idle_set:
            del self._idle_set[oldest]
            oldest.transport.close()
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._idle_set.pop(self, None)
        self._cancel_deadline()
        super().connection_lost(exc)

    def _become_idle(self) -> None:
        self._idle_set[self] = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._phase == _IDLE and not self.transport.is_closing() and not self.pipeline:
            self._become_idle()

    # --- reading a request -----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        # While a head is being read, feed at most the remaining head budget at a time, so an
        # oversized head is refused before the parser has buffered much more than the limit.
        view = memoryview(data)
        while view:
            if self._phase == _BODY:
                piece, view = view, view[:0]
            else:
                if self._phase == _IDLE:
                    self._start_head()
                budget = max(self.limits.max_header_bytes - self._head_bytes, 0) + 1
                piece, view = view[:budget], view[budget:]
                self._head_bytes += len(piece)
            if not self._feed(piece):
                return
            if self._phase == _HEAD and self._head_bytes > self.limits.max_header_bytes:
                self._refuse(431)
                return

    def _feed(self, piece: memoryview) -> bool:
        """Parse; False when the connection is being closed."""
        try:
            self.parser.feed_data(piece)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _Refuse):
                self._refuse(exc.__context__.status)
            else:
                self.send_400_response("Invalid HTTP request received.")
            return False
        except httptools.HttpParserError:
            self.send_400_response("Invalid HTTP request received.")
            return False
        except httptools.HttpParserUpgrade:
            # No upgrades (ws="none"): the request was served as plain HTTP; anything the
            # client sends after it in this connection is not HTTP/1.1.
            return False
        return not self.transport.is_closing()

    def _start_head(self) -> None:
        self._unset_keepalive_if_required()
        self._idle_set.pop(self, None)
        self._phase = _HEAD
        self._head_bytes = 0
        self._set_deadline(self.limits.header_timeout)

    def on_message_begin(self) -> None:
        if self._phase == _IDLE:  # the next pipelined request, in the same chunk
            self._start_head()
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > self.limits.max_request_line_bytes:
            raise _Refuse(414)
        super().on_url(url)

    def on_headers_complete(self) -> None:
        self._phase = _BODY
        self._set_deadline(self.limits.body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._phase = _IDLE
        self._cancel_deadline()
        super().on_message_complete()
        if self.cycle.response_complete and not self.pipeline:
            # Answered before its body was read (413, 401): idle from now, under the keep-alive
            # timeout like any other idle connection.
            self._become_idle()
            if self.timeout_keep_alive_task is None:
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self.timeout_keep_alive_handler
                )

    # --- deadlines and refusals ------------------------------------------------------------

    def _set_deadline(self, seconds: float) -> None:
        self._cancel_deadline()
        self._deadline = self.loop.call_later(seconds, self._deadline_passed)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _deadline_passed(self) -> None:
        self._deadline = None
        if self.cycle is not None and self._phase == _BODY:
            # The application may be waiting for the rest of the body: it sees a disconnect.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
            if self.cycle.response_started:
                self.transport.close()
                return
        self._refuse(408)

    def _refuse(self, status: int) -> None:
        self._cancel_deadline()
        self._idle_set.pop(self, None)
        if not self.transport.is_closing():
            self.transport.write(_response(status))
            self.transport.close()
