"""Idempotency-Key on creating POSTs: replay, mismatch (422) and in-progress (409)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import Request
from starlette.responses import Response

from eventrelay.api.deps import Principal, runtime_of
from eventrelay.errors import ApiError
from eventrelay.store import idempotency

HEADER = "idempotency-key"


def _request_hash(request: Request, body: bytes) -> str:
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.url.path.encode(), canonical):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()


def json_response(content: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(content), status_code=status, media_type="application/json", headers=headers
    )


async def run_idempotent(
    request: Request,
    who: Principal,
    operation: Callable[[], Awaitable[dict[str, Any]]],
    status: int = 201,
) -> Response:
    key = request.headers.get(HEADER)
    if key is None:
        return json_response(await operation(), status)
    if not 1 <= len(key) <= 255:
        raise ApiError(
            422,
            "validation_error",
            "Idempotency-Key must be 1 to 255 characters",
            [{"field": "header.Idempotency-Key", "message": "must be 1 to 255 characters"}],
        )
    rt = runtime_of(request)
    request_hash = _request_hash(request, await request.body())
    async with rt.db.transaction() as conn:
        existing = await idempotency.claim(conn, who.org_id, key, request_hash)
    if existing is not None:
        if existing["request_hash"] != request_hash:
            raise ApiError(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request",
                [{"field": "header.Idempotency-Key", "message": "used with another request"}],
            )
        if existing["state"] != "done":
            raise ApiError(
                409,
                "idempotency_in_progress",
                "a request with this Idempotency-Key is still in progress",
                headers={"Retry-After": "1"},
            )
        return Response(
            existing["response_body"],
            status_code=existing["response_status"],
            media_type="application/json",
            headers={"Idempotency-Replay": "true", "Idempotency-Key": key},
        )
    try:
        result = await operation()
    except Exception:
        # Nothing was created: let a retry with the same key run again.
        async with rt.db.transaction() as conn:
            await idempotency.release(conn, who.org_id, key)
        raise
    body = orjson.dumps(result)
    async with rt.db.transaction() as conn:
        await idempotency.complete(conn, who.org_id, key, status, body.decode())
    return Response(
        body, status_code=status, media_type="application/json", headers={"Idempotency-Key": key}
    )
