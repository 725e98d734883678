"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from eventrelay.api.deps import runtime_of
from eventrelay.api.errors import error_response
from eventrelay.api.idempotency import json_response

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> Response:
    return json_response({"status": "ok"}, 200)


@router.get("/readyz", summary="The database (and queue) are reachable")
async def readyz(request: Request) -> Response:
    rt = runtime_of(request)
    if not await rt.db.ping():
        return error_response(503, "not_ready", "database unreachable")
    return json_response({"status": "ready"}, 200)
