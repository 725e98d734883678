"""HTTP details of the ingest API: the paths the SDKs call, reading bodies, write keys, CORS and
the error shape the SDKs parse. No routing or event logic here.

Paths, as Segment's Tracking API and RudderStack's data plane serve them:
- long forms `/v1/{track,identify,page,screen,group,alias,batch,import}` (every SDK);
- analytics.js (analytics-next) posts one event to `<apiHost>/<first letter of the type>`
  (`/v1/t`, `/v1/i`, `/v1/p`, `/v1/s`, `/v1/g`, `/v1/a`) and batches to `/v1/b`, with a
  `text/plain` body and the write key both in the body and as Basic auth; its client metrics go
  to `/v1/m` (packages/browser/src/plugins/segmentio/{index,batched-dispatcher}.ts,
  core/stats/remote-metrics.ts in github.com/segmentio/analytics-next);
- RudderStack's JavaScript SDK v3 posts to `<dataPlaneUrl>/v1/<type>` and `/v1/batch`, its
  beacon transport to `/beacon/v1/batch?writeKey=<key>` (a `text/plain` Blob through
  `navigator.sendBeacon`, no headers), its metrics to `<dataPlaneUrl>/rsaMetrics`
  (packages/analytics-js-plugins/src/{xhrQueue,beaconQueue}/ and
  packages/analytics-js/src/components/configManager/constants.ts in
  github.com/rudderlabs/rudder-sdk-js).

Errors are `{"code", "message", "details"?}` at the top level: segment-analytics-python and
rudder-sdk-python read `code` and `message` from the top of an error body (their request.py),
and older rudder-sdk-python raises KeyError, then retries, on anything else.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.types import Receive, Scope, Send

EVENT_PATHS = {
    "/v1/track": "track",
    "/v1/identify": "identify",
    "/v1/page": "page",
    "/v1/screen": "screen",
    "/v1/group": "group",
    "/v1/alias": "alias",
    "/v1/batch": "batch",
    "/v1/import": "batch",
    # analytics.js short forms
    "/v1/t": "track",
    "/v1/i": "identify",
    "/v1/p": "page",
    "/v1/s": "screen",
    "/v1/g": "group",
    "/v1/a": "alias",
    "/v1/b": "batch",
    # RudderStack's beacon transport
    "/beacon/v1/batch": "batch",
}
# The long forms, as documented in the OpenAPI description.
DOCUMENTED_PATHS = (
    "/v1/track",
    "/v1/identify",
    "/v1/page",
    "/v1/screen",
    "/v1/group",
    "/v1/alias",
    "/v1/batch",
)
# Client telemetry of the browser SDKs: answered 200 and dropped.
METRICS_PATHS = frozenset({"/v1/m", "/rsaMetrics"})
# Everything else the ingest handler owns besides EVENT_PATHS (settings, source config, CORS
# and 404s for unknown tracking paths).
SEGMENT_SETTINGS_PREFIX = "/v1/projects/"
RUDDER_CONFIG_PATHS = frozenset({"/sourceConfig", "/sourceConfig/"})
ADMIN_PREFIX = "/v1/admin"


def owns(path: str) -> bool:
    """Whether a path belongs to the ingest side (every path under /v1/ except the admin API)."""
    if path in EVENT_PATHS or path in METRICS_PATHS or path in RUDDER_CONFIG_PATHS:
        return True
    if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
        return False
    return path.startswith("/v1/")


class Refused(Exception):
    """A request ingest refuses: answered with `status` and the SDK error shape."""

    def __init__(
        self, status: int, code: str, message: str, details: list[Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def error_body(code: str, message: str, details: Sequence[Mapping[str, Any]] | None) -> bytes:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = list(details)
    return orjson.dumps(body)


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def basic_write_key(value: bytes | None) -> str | None:
    if not value or value[:6].lower() != b"basic ":
        return None
    try:
        decoded = base64.b64decode(value[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0] or None


def query_write_key(scope: Scope) -> str | None:
    """`?writeKey=` (RudderStack's beacon transport and source config request)."""
    query = scope.get("query_string", b"")
    if b"writeKey=" not in query:
        return None
    values = parse_qs(query.decode("latin-1")).get("writeKey")
    return values[0] if values and values[0] else None


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Refused(400, "bad_request", "client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Refused(413, "payload_too_large", f"request body is over {limit // 1024} KB")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def gunzip(body: bytes, limit: int) -> bytes:
    decompressor = zlib.decompressobj(wbits=47)  # gzip or zlib, auto-detected
    try:
        out = decompressor.decompress(body, limit + 1)
    except zlib.error:
        raise Refused(400, "invalid_encoding", "body is not valid gzip") from None
    if len(out) > limit or decompressor.unconsumed_tail:
        raise Refused(413, "payload_too_large", f"request body is over {limit // 1024} KB")
    return out


def cors_headers(origin: bytes | None) -> list[tuple[bytes, bytes]]:
    """On every ingest response to a browser, errors included: a browser that cannot read a
    4xx reports a network error, and the SDKs retry those (analytics-next re-queues failed
    fetches, RudderStack's SDK retries status 0). Credentials are allowed because nothing here
    reads cookies: the write key is the only credential."""
    if not origin:
        return []
    return [
        (b"access-control-allow-origin", origin),
        (b"access-control-allow-credentials", b"true"),
        (b"vary", b"Origin"),
    ]


_DEFAULT_ALLOW_HEADERS = b"authorization, content-type, content-encoding"


async def preflight(scope: Scope, send: Send, origin: bytes | None) -> None:
    # The source is unknown before the real request (no credentials in a preflight): allow the
    # preflight, and enforce the source's allowed origins on the request itself.
    requested = header(scope, b"access-control-request-headers") or _DEFAULT_ALLOW_HEADERS
    headers = [
        (b"access-control-allow-methods", b"POST, GET, HEAD, OPTIONS"),
        (b"access-control-allow-headers", requested),
        (b"access-control-max-age", b"86400"),
        *cors_headers(origin),
    ]
    if not origin:
        headers.append((b"vary", b"Origin"))
    await respond(send, 204, b"", headers)


async def respond(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]], head: bool = False
) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})
