"""/v1/admin/sources/{id}/live: a source's events as they are accepted, each with its routing
decision per integration, as Server-Sent Events (`eventrelay tail`, the console's debugger).

Editor role or above: events carry personal data. Messages:

    event: ready      {"source_id", "integrations": [{"id", "name", "type"}]}  once, first
    event: event      one accepted event: {"source_id", "message_id", "type", "received_at",
                      "event", "routing": [{"integration_id", "name", "type",
                      "decision": "queued" | "filtered", "reason"?}]}
    event: outcomes   delivery outcomes as workers settle them (any worker process), for events
                      shown or not: {"source_id", "outcomes": [{"message_id", "integration_id",
                      "name", "outcome": "delivered" | "retried" | "discarded" | "filtered" |
                      "expired", "reason"?, "status"?, "message"?, "attempt", "at"}]}
    event: skipped    {"count"}: events not shown (sampling, or this client reading too slowly)
    event: outcomes_skipped  {"count"}: outcomes not shown (at least that many)
    : keepalive       a comment every 15 s

The view samples (see routing/tap.py): it shows what arrives, it is not an export.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from eventrelay.api.deps import Editor, Principal, runtime_of
from eventrelay.api.schemas import ERROR_RESPONSES
from eventrelay.errors import not_found
from eventrelay.routing.tap import Listener, Tap
from eventrelay.runtime import Runtime
from eventrelay.store import sources as source_store
from eventrelay.store.integrations import live_query
from eventrelay.store.tables import integrations as integrations_table

router = APIRouter(prefix="/v1/admin/sources", tags=["sources"], responses=ERROR_RESPONSES)

KEEPALIVE_SECONDS = 15.0
NAMES_REFRESH_SECONDS = 5.0


async def _integrations(rt: Runtime, org_id: str, source_id: str) -> list[dict[str, str]]:
    query = live_query(org_id).where(integrations_table.c.source_id == source_id)
    async with rt.db.read() as conn:
        rows = (await conn.execute(query.order_by(integrations_table.c.pk))).all()
    return [{"id": r.id, "name": r.name, "type": r.type} for r in rows]


def _message(kind: str, data: bytes) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


class LiveStream(Response):
    """The stream itself: it owns its listener, so the tap forgets it however the stream ends
    (client gone, server stopping)."""

    media_type = "text/event-stream"

    def __init__(self, rt: Runtime, tap: Tap, org_id: str, source_id: str) -> None:
        # As StreamingResponse does: no body, hence no Content-Length.
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._rt = rt
        self._tap = tap
        self._org_id = org_id
        self._source_id = source_id
        self._names: dict[str, str] = {}
        self._names_at = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        listener = await self._tap.listen(self._source_id)
        try:
            async with anyio.create_task_group() as group:

                async def until_disconnect() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    group.cancel_scope.cancel()

                group.start_soon(until_disconnect)
                await self._stream(listener, send)
                group.cancel_scope.cancel()
        finally:
            await self._tap.unlisten(listener)

    async def _refresh_names(self) -> list[dict[str, str]]:
        listed = await _integrations(self._rt, self._org_id, self._source_id)
        self._names = {i["id"]: i["name"] for i in listed}
        self._names_at = time.monotonic()
        return listed

    async def _named(self, entry: bytes) -> tuple[str, bytes]:
        """(SSE event name, data): an explained event or a batch of outcomes, named."""
        data: dict[str, Any] = orjson.loads(entry)
        kind = "outcomes" if "outcomes" in data else "event"
        items = data.get("outcomes") if kind == "outcomes" else data.get("routing")
        items = items or []
        unknown = any(d["integration_id"] not in self._names for d in items)
        if unknown and time.monotonic() - self._names_at > NAMES_REFRESH_SECONDS:
            await self._refresh_names()
        for item in items:
            # The worker's name may be older than the console's list; the list wins.
            item["name"] = self._names.get(item["integration_id"], item.get("name"))
        return kind, orjson.dumps(data)

    async def _stream(self, listener: Listener, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        ready = {"source_id": self._source_id, "integrations": await self._refresh_names()}
        body = b"retry: 2000\n\n" + _message("ready", orjson.dumps(ready))
        await send({"type": "http.response.body", "body": body, "more_body": True})
        idle = 0.0
        while not self._tap.stopping:
            entry = await listener.next(timeout=1.0)
            chunk = b""
            skipped = listener.take_skipped()
            if skipped:
                chunk += _message("skipped", orjson.dumps({"count": skipped}))
            skipped = listener.take_skipped_outcomes()
            if skipped:
                chunk += _message("outcomes_skipped", orjson.dumps({"count": skipped}))
            if entry is not None:
                chunk += _message(*await self._named(entry))
            idle = 0.0 if chunk else idle + 1.0
            if idle >= KEEPALIVE_SECONDS:
                chunk, idle = b": keepalive\n\n", 0.0
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


@router.get(
    "/{source_id}/live",
    summary="Follow the source's events and their routing as they arrive (Server-Sent Events)",
    response_class=Response,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An event stream."}},
)
async def live(request: Request, source_id: str, who: Principal = Editor) -> Response:
    rt = runtime_of(request)
    async with rt.db.read() as conn:
        if await source_store.get(conn, who.org_id, source_id) is None:
            raise not_found("source")
    if rt.tap is None:
        raise not_found("live view")  # an API process always has one; this is a worker
    return LiveStream(rt, rt.tap, who.org_id, source_id)
