"""Ingestion: the Segment HTTP Tracking API, so existing Segment and RudderStack SDKs work
unchanged, from servers and from browsers (paths, CORS, error shape: api/ingest_http.py; the
settings the browser SDKs load: api/sdk_config.py).

A plain ASGI handler (no framework routing or validation layers): this is the hot path. The
response is 200 only after the accepted events are durable in the queue.

Limits as Segment's: 32 KB per event, 500 KB and 2,500 events per batch (413). Bad JSON is 400.
In a batch, valid events are accepted and invalid ones reported by index; only a batch with no
valid event at all is refused (400). An event that cannot be processed (nesting deeper than the
JSON encoder takes, a timestamp its clock-skew correction moves out of range, anything else it
trips) is rejected alone: it never fails the rest of its request.

The organisation's rules (rules/org.py) apply after normalisation and before the event is
stored: an event a drop condition matches is never stored (it is counted, per integration of
the source, as filtered with reason `org_rule`, and the request still succeeds: it was a valid
event an operator chose to drop), and redacted or hashed values never reach the log. With no
rules, the cost is one attribute check per request.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from eventrelay.api.client_ip import ClientAddress
from eventrelay.api.ingest_http import (
    EVENT_PATHS,
    METRICS_PATHS,
    RUDDER_CONFIG_PATHS,
    SEGMENT_SETTINGS_PREFIX,
    Refused,
    basic_write_key,
    cors_headers,
    error_body,
    gunzip,
    header,
    preflight,
    query_write_key,
    read_body,
    respond,
)
from eventrelay.api.sdk_config import rudder_source_config, segment_settings, settings_write_key
from eventrelay.core.events import InvalidEvent, Received, normalize, parse_sent_at
from eventrelay.queue.base import Message
from eventrelay.routing.directory import UNUSABLE, SourceEntry
from eventrelay.routing.router import admit
from eventrelay.rules import ORG_RULE, OrgRules
from eventrelay.runtime import Runtime
from eventrelay.telemetry import INGEST_EVENTS, INGEST_REQUESTS
from eventrelay.timeutil import iso_from_epoch_ms

log = logging.getLogger("eventrelay.ingest")

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2500
# Normalisation adds receivedAt, messageId, timestamps: allow for them on top of 32 KB.
_NORMALISED_SLACK = 512
# orjson writes at most 254 levels of nesting (it reads 1,024).
MAX_DEPTH = 254

PATHS = EVENT_PATHS
_OK = b'{"success":true}'
_UNAUTHORIZED = "missing or unknown write key: send it as the Basic auth username or as writeKey"


class IngestApp:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._clients = ClientAddress(rt.settings.trusted_proxy_networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = PATHS.get(scope["path"])
        origin = header(scope, b"origin")
        method = scope["method"]
        if method == "OPTIONS":
            await preflight(scope, send, origin)
            return
        cors = cors_headers(origin)
        if kind is None:
            await self._other(scope, receive, send, origin, cors)
            return
        if method != "POST":
            INGEST_REQUESTS.labels(kind, "405").inc()
            await respond(send, 405, error_body("method_not_allowed", "use POST", None), cors)
            return
        try:
            body = await self._handle(scope, receive, kind, origin)
        except Refused as refused:
            INGEST_REQUESTS.labels(kind, str(refused.status)).inc()
            await respond(
                send,
                refused.status,
                error_body(refused.code, refused.message, refused.details),
                cors,
            )
            return
        except Exception as exc:
            # A bug, not the client's input (that is refused above): counted, logged by type
            # only, and a 500 so SDKs keep the events and retry.
            log.error("ingest failed", extra={"error_type": type(exc).__name__})
            INGEST_REQUESTS.labels(kind, "500").inc()
            await respond(send, 500, error_body("internal_error", "internal error", None), cors)
            return
        INGEST_REQUESTS.labels(kind, "200").inc()
        await respond(send, 200, body, cors)

    async def _other(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        origin: bytes | None,
        cors: list[tuple[bytes, bytes]],
    ) -> None:
        """Browser SDK settings, their client metrics, and 404s for unknown paths under /v1/
        (with CORS, so a browser shows the 404 instead of a CORS failure)."""
        path: str = scope["path"]
        method = scope["method"]
        endpoint = "other"
        try:
            if path in METRICS_PATHS:
                endpoint = "metrics"
                if method != "POST":
                    raise Refused(405, "method_not_allowed", "use POST")
                await read_body(receive, MAX_EVENT_BYTES)
                body = _OK
            elif path.startswith(SEGMENT_SETTINGS_PREFIX) or path in RUDDER_CONFIG_PATHS:
                endpoint = "settings"
                body = self._sdk_settings(scope, path, origin)
            else:
                raise Refused(404, "not_found", "no ingest endpoint at this path")
        except Refused as refused:
            INGEST_REQUESTS.labels(endpoint, str(refused.status)).inc()
            await respond(
                send,
                refused.status,
                error_body(refused.code, refused.message, refused.details),
                cors,
                head=method == "HEAD",
            )
            return
        INGEST_REQUESTS.labels(endpoint, "200").inc()
        await respond(send, 200, body, cors, head=method == "HEAD")

    def _sdk_settings(self, scope: Scope, path: str, origin: bytes | None) -> bytes:
        if scope["method"] not in ("GET", "HEAD"):
            raise Refused(405, "method_not_allowed", "use GET")
        rudder = path in RUDDER_CONFIG_PATHS
        if rudder:
            if b"view=ad" in scope.get("query_string", b""):
                return b"{}"  # the SDK's ad-blocker probe: any success will do
            write_key = query_write_key(scope) or basic_write_key(header(scope, b"authorization"))
        else:
            write_key = settings_write_key(path, SEGMENT_SETTINGS_PREFIX)
            if write_key is None:
                raise Refused(404, "not_found", "no ingest endpoint at this path")
        directory = self._rt.directory
        assert directory is not None
        source = directory.by_write_key(write_key) if write_key else None
        if source is None or write_key is None:
            raise Refused(404, "not_found", "no source has this write key")
        if origin and not source.allows_origin(origin.decode(errors="replace")):
            raise Refused(403, "origin_not_allowed", "this origin may not send to this source")
        if rudder:
            return orjson.dumps(rudder_source_config(write_key, source))
        public_url = self._rt.settings.public_url or self._clients.origin(
            scope, header(scope, b"host")
        )
        return orjson.dumps(segment_settings(write_key, public_url))

    async def _handle(
        self, scope: Scope, receive: Receive, kind: str, origin: bytes | None
    ) -> bytes:
        limit = MAX_BATCH_BYTES if kind == "batch" else MAX_EVENT_BYTES
        raw = await read_body(receive, limit)
        encoding = header(scope, b"content-encoding")
        if encoding and encoding.strip().lower() in (b"gzip", b"deflate"):
            raw = gunzip(raw, limit)
        # Any content type: browsers send JSON as text/plain to avoid a CORS preflight.
        write_key = basic_write_key(header(scope, b"authorization"))
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            payload = _lenient_json(raw, exc)
        if not isinstance(payload, dict):
            raise Refused(400, "invalid_json", "request body must be a JSON object")
        if write_key is None:
            body_key = payload.get("writeKey")
            write_key = body_key if isinstance(body_key, str) and body_key else None
            if write_key is None:
                write_key = query_write_key(scope)
        directory = self._rt.directory
        assert directory is not None
        source = directory.by_write_key(write_key) if write_key else None
        if source is None:
            raise Refused(401, "unauthorized", _UNAUTHORIZED)
        if origin and not source.allows_origin(origin.decode(errors="replace")):
            raise Refused(403, "origin_not_allowed", "this origin may not send to this source")
        ip = self._clients.of(scope)
        received_at = Received.at(datetime.now(UTC))
        drops = None
        if source.org_rules is not None:
            drops = self._drops(source, source.org_rules)
        if kind == "batch":
            accepted, rejected = self._batch(payload, received_at, ip, drops)
        else:
            accepted, rejected = self._single(payload, kind, received_at, ip, drops)
        if rejected:
            INGEST_EVENTS.labels(source.id, "rejected").inc(len(rejected))
        dropped = drops.count if drops is not None else 0
        if not accepted and not dropped:
            details = [{"field": r["field"], "message": r["message"]} for r in rejected]
            message = (
                rejected[0]["message"] if len(rejected) == 1 else "no valid event in the batch"
            )
            status = 413 if all(r["code"] == "event_too_large" for r in rejected) else 400
            code = "payload_too_large" if status == 413 else "invalid_event"
            raise Refused(status, code, message, details)
        # The parsed body is not needed past here: freed before waiting for durability, so
        # requests in flight hold only their events' JSON (and the collector has less to scan).
        del payload
        await self._store(source, accepted, drops)
        INGEST_EVENTS.labels(source.id, "accepted").inc(len(accepted))
        if dropped:
            INGEST_EVENTS.labels(source.id, "filtered").inc(dropped)
        if rejected:
            # Dropped events were valid: accepted, as far as the sender is concerned.
            body = {"success": True, "accepted": len(accepted) + dropped, "rejected": rejected}
            return orjson.dumps(body)
        return _OK

    def _drops(self, source: SourceEntry, rules: OrgRules) -> Drops:
        if rules is UNUSABLE:
            raise Refused(503, "unavailable", "events could not be stored; retry later")
        tap = self._rt.tap
        return Drops(rules, tap is not None and source.id in tap.watched)

    def _batch(
        self, payload: dict[str, Any], received_at: Received, ip: str | None, drops: Drops | None
    ) -> tuple[list[Message], list[dict[str, Any]]]:
        batch = payload.get("batch")
        if not isinstance(batch, list):
            raise Refused(
                400,
                "invalid_event",
                "batch: must be an array of events",
                [{"field": "batch", "message": "must be an array of events"}],
            )
        if len(batch) > MAX_BATCH_EVENTS:
            raise Refused(
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
            enumerate(batch), received_at, None, sent_at, context, integrations, "batch.", ip, drops
        )

    def _single(
        self,
        payload: dict[str, Any],
        kind: str,
        received_at: Received,
        ip: str | None,
        drops: Drops | None,
    ) -> tuple[list[Message], list[dict[str, Any]]]:
        return _normalize_all([(0, payload)], received_at, kind, None, None, None, "", ip, drops)

    async def _store(
        self, source: SourceEntry, accepted: list[Message], drops: Drops | None
    ) -> None:
        rt = self._rt
        # Stored once in the source's log, however many integrations read it (routing.router).
        admitted = admit(source)
        assert rt.queue is not None and rt.metrics is not None
        if accepted:  # empty when organisation rules dropped every event of the request
            try:
                await rt.queue.publish(source.id, accepted, admitted.skip)
            except Exception as exc:
                log.error("queue publish failed", extra={"error_type": type(exc).__name__})
                raise Refused(
                    503, "unavailable", "events could not be stored; retry later"
                ) from None
        now = time.time()
        count = len(accepted)
        if count:
            for integration_id in admitted.readers:
                rt.metrics.add(integration_id, "queued", count, at=now)
            for integration_id, reason in admitted.filtered:
                rt.metrics.add(integration_id, "filtered", count, key=reason, at=now)
        if drops is not None and drops.count:
            # Dropped before any integration's rules: counted for every one of the source.
            for target in source.routes:
                rt.metrics.add(target.integration_id, "filtered", drops.count, key=ORG_RULE, at=now)
        tap = rt.tap  # live view (tail, console): one set lookup per request when nobody listens
        if tap is not None and source.id in tap.watched:
            tap.offer(source, accepted, drops.shown if drops is not None and drops.shown else ())


class Drops:
    """Organisation rules at work on one request: how many events they dropped and, when
    someone follows the source in the live view, those events (redacted and hashed too)."""

    __slots__ = ("count", "rules", "shown")

    def __init__(self, rules: OrgRules, show: bool) -> None:
        self.rules = rules
        self.count = 0
        self.shown: list[Message] | None = [] if show else None

    def judge(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """The event to store (redacted and hashed), or None when a drop condition matched."""
        rules = self.rules
        if rules.drops and rules.decide(event) is not None:
            if self.shown is not None:
                scrubbed = rules.scrub(event)
                with contextlib.suppress(orjson.JSONEncodeError):  # then it is not shown
                    self.shown.append(Message(scrubbed["messageId"], orjson.dumps(scrubbed)))
            self.count += 1
            return None
        return rules.scrub(event)


def _lenient_json(raw: bytes, error: orjson.JSONDecodeError) -> Any:
    """A lone surrogate escape (`"\\ud800"`) is valid JSON grammar that orjson refuses: parse
    such a body with the standard library so only the events carrying one are rejected."""
    if "surrogate" in str(error):
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            pass
    raise Refused(400, "invalid_json", "request body is not valid JSON") from None


def _rejection(index: int, code: str, field: str, message: str) -> dict[str, Any]:
    return {"index": index, "code": code, "field": field, "message": message}


def _normalize_all(
    items: Iterable[tuple[int, Any]],
    received_at: Received,
    kind: str | None,
    sent_at: int | None,
    context: dict[str, Any] | None,
    integrations: dict[str, Any] | None,
    prefix: str,
    ip: str | None,
    drops: Drops | None = None,
) -> tuple[list[Message], list[dict[str, Any]]]:
    accepted: list[Message] = []
    rejected: list[dict[str, Any]] = []
    for index, item in items:
        where = f"{prefix}{index}." if prefix else ""
        try:
            event = normalize(item, received_at, kind, sent_at, context, integrations)
            if ip is not None:
                # Segment fills context.ip from the request when the client leaves it out.
                event_context = event.get("context")
                if event_context is None:
                    event["context"] = {"ip": ip}
                elif not event_context.get("ip"):
                    event_context["ip"] = ip
            if drops is not None:
                kept = drops.judge(event)
                if kept is None:
                    continue  # dropped by an organisation rule: never stored, counted
                event = kept
            raw = orjson.dumps(event)
        except InvalidEvent as exc:
            field = f"{where}{exc.error.field}".rstrip(".") or "body"
            rejected.append(_rejection(index, "invalid_event", field, exc.error.message))
            continue
        except orjson.JSONEncodeError as exc:
            message = (
                "contains a string with a lone surrogate"
                if "surrogate" in str(exc)
                else f"nests objects or arrays more than {MAX_DEPTH} levels deep"
            )
            rejected.append(
                _rejection(index, "invalid_event", where.rstrip(".") or "body", message)
            )
            continue
        except Exception as exc:
            # Whatever else one event trips must not fail the others of its request.
            log.warning("event rejected", extra={"error_type": type(exc).__name__})
            message = "the event could not be processed"
            rejected.append(
                _rejection(index, "invalid_event", where.rstrip(".") or "body", message)
            )
            continue
        if len(raw) > MAX_EVENT_BYTES + _NORMALISED_SLACK:
            message = f"event is over {MAX_EVENT_BYTES // 1024} KB"
            rejected.append(
                _rejection(index, "event_too_large", where.rstrip(".") or "body", message)
            )
            continue
        # The id and the JSON are all that is kept: the parsed event is freed here.
        accepted.append(Message(event["messageId"], raw))
    return accepted, rejected
