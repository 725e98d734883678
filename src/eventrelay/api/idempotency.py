"""Idempotency-Key on creating POSTs: replay, mismatch (422) and in-progress (409).

The record keeps the id of what the first request created, never its response: a response may
carry a secret (a new admin token), and the idempotency table must not become a second, readable
copy of it. A replay renders the resource again as it is now (`replay`); an operation whose
response holds a secret shown once (token creation) has no replay and answers 409 naming what
was created.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
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


Render = Callable[[str], Awaitable[dict[str, Any]]]


async def run_idempotent(
    request: Request,
    who: Principal,
    operation: Callable[[], Awaitable[dict[str, Any]]],
    replay: Render | None,
    status: int = 201,
) -> Response:
    """Run `operation` once per Idempotency-Key. `replay(resource id)` renders the response
    again; None means the response held a secret that is not kept (the replay is refused)."""
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
        return await _replay(existing, key, replay)
    try:
        result = await operation()
    except Exception:
        # Nothing was created: let a retry with the same key run again.
        async with rt.db.transaction() as conn:
            await idempotency.release(conn, who.org_id, key)
        raise
    async with rt.db.transaction() as conn:
        await idempotency.complete(conn, who.org_id, key, status, str(result["id"]))
    return json_response(result, status, {"Idempotency-Key": key})


async def _replay(existing: Mapping[str, Any], key: str, replay: Render | None) -> Response:
    resource_id = str(existing["resource_id"])
    if replay is None:
        raise ApiError(
            409,
            "idempotency_secret_not_kept",
            f"the first request with this Idempotency-Key created {resource_id}; its response "
            "held a secret that is shown once and never stored, so it cannot be replayed. If "
            "that response was lost, revoke it and create another",
            headers={"Idempotency-Key": key},
        )
    try:
        body = await replay(resource_id)
    except ApiError as exc:
        if exc.status != 404:
            raise
        raise ApiError(
            409,
            "idempotency_resource_gone",
            f"the first request with this Idempotency-Key created {resource_id}, which has been "
            "deleted since",
        ) from None
    return json_response(
        body,
        int(existing["response_status"]),
        {"Idempotency-Replay": "true", "Idempotency-Key": key},
    )
