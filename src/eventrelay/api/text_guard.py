"""No NUL character (U+0000) in admin input.

PostgreSQL text and JSONB cannot hold NUL, so a name, id or query parameter containing one
failed deep in the database with a 500 (SQLite stored it). It is refused here, once for every
admin route and both shapes: a path holding one names no resource (404); a query parameter or
a string in a JSON body holding one is invalid input (422 at its field: `name`,
`config.headers.X-Api-Key`, `source_id`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventrelay.api.errors import error_body

_NUL = "\x00"
_MESSAGE = "must not contain a NUL character"


def nul_fields(value: Any, path: str = "") -> list[str]:
    """Dotted paths of the strings (keys included) holding a NUL in decoded JSON."""
    found: list[str] = []
    if isinstance(value, str):
        if _NUL in value:
            found.append(path or "body")
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if _NUL in key:
                found.append(where)
            found += nul_fields(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += nul_fields(item, f"{path}.{index}" if path else str(index))
    return found


class NulGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _NUL in scope["path"]:
            await _reply(send, 404, "not_found", "no such resource", None)
            return
        query: bytes = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            params = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
            fields = [name for name, value in params if _NUL in name or _NUL in value]
            if fields:
                await _reply(send, 422, "validation_error", f"{fields[0]}: {_MESSAGE}", fields)
                return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        body, more = await _read(receive)
        if b"\\u0000" in body:
            try:
                fields = nul_fields(orjson.loads(body))
            except orjson.JSONDecodeError:
                fields = []  # not JSON: the route says so
            if fields:
                await _reply(send, 422, "validation_error", f"{fields[0]}: {_MESSAGE}", fields)
                return
        await self.app(scope, _replay(body, more, receive), send)


async def _read(receive: Receive) -> tuple[bytes, bool]:
    """The whole request body (admin bodies are small: BodySizeLimit caps them)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(body: bytes, complete: bool, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent and complete:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _reply(
    send: Send, status: int, code: str, message: str, fields: list[str] | None
) -> None:
    details = [{"field": field, "message": _MESSAGE} for field in fields] if fields else None
    body = error_body(code, message, details)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
