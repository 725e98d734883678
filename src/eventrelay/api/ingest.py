"""Ingestion: the Segment HTTP Tracking API, so existing Segment and RudderStack SDKs work
unchanged. `POST /v1/{track,identify,page,screen,group,alias,batch}`.

A plain ASGI handler (no framework routing or validation layers): this is the hot path. The
response is 200 only after the accepted events are durable in the queue.

Limits as Segment's: 32 KB per event, 500 KB and 2,500 events per batch (413). Bad JSON is 400.
In a batch, valid events are accepted and invalid ones reported by index; only a batch with no
valid event at all is refused (400).
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from eventrelay.api.errors import error_body
from eventrelay.core.events import InvalidEvent, Received, normalize, parse_sent_at
from eventrelay.routing.directory import SourceEntry
from eventrelay.routing.router import route
from eventrelay.runtime import Runtime
from eventrelay.telemetry import INGEST_EVENTS, INGEST_REQUESTS
from eventrelay.timeutil import iso_from_epoch_ms

log = logging.getLogger("eventrelay.ingest")

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2500
# Normalisation adds receivedAt, messageId, timestamps: allow for them on top of 32 KB.
_NORMALISED_SLACK = 512

PATHS = {
    "/v1/track": "track",
    "/v1/identify": "identify",
    "/v1/page": "page",
    "/v1/screen": "screen",
    "/v1/group": "group",
    "/v1/alias": "alias",
    "/v1/batch": "batch",
    "/v1/import": "batch",
}
_OK = b'{"success":true}'
_ALLOW_HEADERS = b"authorization, content-type, content-encoding"


class _Refused(Exception):
    def __init__(
        self, status: int, code: str, message: str, details: list[Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _basic_write_key(value: bytes | None) -> str | None:
    if not value or value[:6].lower() != b"basic ":
        return None
    try:
        decoded = base64.b64decode(value[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0] or None


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Refused(400, "bad_request", "client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _Refused(413, "payload_too_large", f"request body is over {limit // 1024} KB")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _gunzip(body: bytes, limit: int) -> bytes:
    decompressor = zlib.decompressobj(wbits=47)  # gzip or zlib, auto-detected
    try:
        out = decompressor.decompress(body, limit + 1)
    except zlib.error:
        raise _Refused(400, "invalid_encoding", "body is not valid gzip") from None
    if len(out) > limit or decompressor.unconsumed_tail:
        raise _Refused(413, "payload_too_large", f"request body is over {limit // 1024} KB")
    return out


class IngestApp:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = PATHS[scope["path"]]
        origin = _header(scope, b"origin")
        method = scope["method"]
        if method == "OPTIONS":
            await self._preflight(scope, send, origin)
            return
        cors = [(b"access-control-allow-origin", origin), (b"vary", b"Origin")] if origin else []
        if method != "POST":
            await _respond(send, 405, error_body("method_not_allowed", "use POST", None), cors)
            return
        try:
            body = await self._handle(scope, receive, kind, origin)
        except _Refused as refused:
            if refused.code == "origin_not_allowed":
                cors = []
            INGEST_REQUESTS.labels(kind, str(refused.status)).inc()
            await _respond(
                send,
                refused.status,
                error_body(refused.code, refused.message, refused.details),
                cors,
            )
            return
        INGEST_REQUESTS.labels(kind, "200").inc()
        await _respond(send, 200, body, cors)

    async def _preflight(self, scope: Scope, send: Send, origin: bytes | None) -> None:
        # The source is unknown before the real request (no credentials in a preflight): allow
        # the preflight, and enforce the source's allowed origins on the request itself.
        requested = _header(scope, b"access-control-request-headers") or _ALLOW_HEADERS
        headers = [
            (b"access-control-allow-methods", b"POST, OPTIONS"),
            (b"access-control-allow-headers", requested),
            (b"access-control-max-age", b"86400"),
            (b"vary", b"Origin"),
        ]
        if origin:
            headers.append((b"access-control-allow-origin", origin))
        await _respond(send, 204, b"", headers)

    async def _handle(
        self, scope: Scope, receive: Receive, kind: str, origin: bytes | None
    ) -> bytes:
        limit = MAX_BATCH_BYTES if kind == "batch" else MAX_EVENT_BYTES
        raw = await _read_body(receive, limit)
        encoding = _header(scope, b"content-encoding")
        if encoding and encoding.strip().lower() in (b"gzip", b"deflate"):
            raw = _gunzip(raw, limit)
        write_key = _basic_write_key(_header(scope, b"authorization"))
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _Refused(400, "invalid_json", "request body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise _Refused(400, "invalid_json", "request body must be a JSON object")
        if write_key is None:
            body_key = payload.get("writeKey")
            write_key = body_key if isinstance(body_key, str) and body_key else None
        directory = self._rt.directory
        assert directory is not None
        source = directory.by_write_key(write_key) if write_key else None
        if source is None:
            raise _Refused(
                401,
                "unauthorized",
                "missing or unknown write key: send it as the Basic auth username or as writeKey",
            )
        if origin and not source.allows_origin(origin.decode(errors="replace")):
            raise _Refused(403, "origin_not_allowed", "this origin may not send to this source")
        received_at = Received.at(datetime.now(UTC))
        if kind == "batch":
            accepted, rejected = self._batch(payload, received_at)
        else:
            accepted, rejected = self._single(payload, kind, received_at)
        if rejected:
            INGEST_EVENTS.labels("rejected").inc(len(rejected))
        if not accepted:
            details = [{"field": r["field"], "message": r["message"]} for r in rejected]
            message = (
                rejected[0]["message"] if len(rejected) == 1 else "no valid event in the batch"
            )
            status = 413 if all(r["code"] == "event_too_large" for r in rejected) else 400
            code = "payload_too_large" if status == 413 else "invalid_event"
            raise _Refused(status, code, message, details)
        await self._store(source, accepted)
        INGEST_EVENTS.labels("accepted").inc(len(accepted))
        if rejected:
            return orjson.dumps({"success": True, "accepted": len(accepted), "rejected": rejected})
        return _OK

    def _batch(
        self, payload: dict[str, Any], received_at: Received
    ) -> tuple[list[tuple[dict[str, Any], bytes]], list[dict[str, Any]]]:
        batch = payload.get("batch")
        if not isinstance(batch, list):
            raise _Refused(
                400,
                "invalid_event",
                "batch: must be an array of events",
                [{"field": "batch", "message": "must be an array of events"}],
            )
        if len(batch) > MAX_BATCH_EVENTS:
            raise _Refused(
                413, "payload_too_large", f"a batch holds at most {MAX_BATCH_EVENTS} events"
            )
        context = payload.get("context") if isinstance(payload.get("context"), dict) else None
        integrations = (
            payload.get("integrations") if isinstance(payload.get("integrations"), dict) else None
        )
        sent_at = parse_sent_at(payload.get("sentAt"))
        if sent_at is not None:
            received_at = Received(received_at.ms, received_at.iso, iso_from_epoch_ms(sent_at))
        return _normalize_all(
            enumerate(batch), received_at, None, sent_at, context, integrations, "batch."
        )

    def _single(
        self, payload: dict[str, Any], kind: str, received_at: Received
    ) -> tuple[list[tuple[dict[str, Any], bytes]], list[dict[str, Any]]]:
        return _normalize_all([(0, payload)], received_at, kind, None, None, None, "")

    async def _store(
        self, source: SourceEntry, accepted: list[tuple[dict[str, Any], bytes]]
    ) -> None:
        rt = self._rt
        routed = route(source, accepted)
        assert rt.queue is not None and rt.metrics is not None
        try:
            await rt.queue.publish(routed.batches)
        except Exception as exc:
            log.error("queue publish failed", extra={"error_type": type(exc).__name__})
            raise _Refused(503, "unavailable", "events could not be stored; retry later") from None
        now = time.time()
        for integration_id, messages in routed.batches.items():
            rt.metrics.add(integration_id, "queued", len(messages), at=now)
        for (integration_id, reason), count in routed.filtered.items():
            rt.metrics.add(integration_id, "filtered", count, key=reason, at=now)
        tap = rt.tap  # live view (tail, console): one set lookup per request when nobody listens
        if tap is not None and source.id in tap.watched:
            tap.offer(source, accepted)


def _normalize_all(
    items: Iterable[tuple[int, Any]],
    received_at: Received,
    kind: str | None,
    sent_at: int | None,
    context: dict[str, Any] | None,
    integrations: dict[str, Any] | None,
    prefix: str,
) -> tuple[list[tuple[dict[str, Any], bytes]], list[dict[str, Any]]]:
    accepted: list[tuple[dict[str, Any], bytes]] = []
    rejected: list[dict[str, Any]] = []
    for index, item in items:
        where = f"{prefix}{index}." if prefix else ""
        try:
            event = normalize(item, received_at, kind, sent_at, context, integrations)
        except InvalidEvent as exc:
            field = f"{where}{exc.error.field}".rstrip(".") or "body"
            rejected.append(
                {
                    "index": index,
                    "code": "invalid_event",
                    "field": field,
                    "message": exc.error.message,
                }
            )
            continue
        raw = orjson.dumps(event)
        if len(raw) > MAX_EVENT_BYTES + _NORMALISED_SLACK:
            rejected.append(
                {
                    "index": index,
                    "code": "event_too_large",
                    "field": where.rstrip(".") or "body",
                    "message": f"event is over {MAX_EVENT_BYTES // 1024} KB",
                }
            )
            continue
        accepted.append((event, raw))
    return accepted, rejected


async def _respond(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | Any
) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
