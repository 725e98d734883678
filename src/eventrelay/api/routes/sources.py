"""/v1/admin/sources"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from starlette.responses import Response

from eventrelay.api.deps import Admin, Editor, Principal, Viewer, runtime_of
from eventrelay.api.idempotency import run_idempotent
from eventrelay.api.paging import Cursor, Limit, page_or_422
from eventrelay.api.schemas import ERROR_RESPONSES, ChangePlan, Source, SourcePage
from eventrelay.control import sources as control
from eventrelay.control.sources import SourceCreate, SourceUpdate, WriteKeyRotation
from eventrelay.store import sources as store
from eventrelay.store.tables import sources as table

router = APIRouter(prefix="/v1/admin/sources", tags=["sources"], responses=ERROR_RESPONSES)


@router.get("", response_model=SourcePage, summary="List sources")
async def list_sources(
    request: Request, cursor: Cursor = None, limit: Limit = 50, who: Principal = Viewer
) -> dict[str, Any]:
    rt = runtime_of(request)
    async with rt.db.read() as conn:
        rows, next_cursor = await page_or_422(
            conn, store.live_query(who.org_id), table.c.pk, cursor, limit
        )
        keys = await store.keys_for(conn, [r["id"] for r in rows])
    return {
        "data": [control.present(r, keys[r["id"]]) for r in rows],
        "next_cursor": next_cursor,
        "has_more": next_cursor is not None,
    }


@router.post("", status_code=201, response_model=Source, summary="Create a source")
async def create_source(request: Request, body: SourceCreate, who: Principal = Editor) -> Response:
    rt = runtime_of(request)
    return await run_idempotent(
        request,
        who,
        lambda: control.create(rt, who.actor, body),
        replay=lambda source_id: control.get(rt, who.org_id, source_id),
    )


@router.get("/{source_id}", response_model=Source, summary="Get a source")
async def get_source(request: Request, source_id: str, who: Principal = Viewer) -> dict[str, Any]:
    return await control.get(runtime_of(request), who.org_id, source_id)


@router.put("/{source_id}", response_model=Source, summary="Update a source")
async def update_source(
    request: Request, source_id: str, body: SourceUpdate, who: Principal = Editor
) -> dict[str, Any]:
    return await control.update(runtime_of(request), who.actor, source_id, body)


@router.post(
    "/{source_id}/plan",
    response_model=ChangePlan,
    summary="What an update with this body would change (nothing is written)",
)
async def plan_source_update(
    request: Request, source_id: str, body: SourceUpdate, who: Principal = Editor
) -> dict[str, Any]:
    return await control.update(runtime_of(request), who.actor, source_id, body, dry_run=True)


@router.delete(
    "/{source_id}", status_code=204, summary="Delete a source (409 while it has integrations)"
)
async def delete_source(request: Request, source_id: str, who: Principal = Admin) -> Response:
    await control.delete(runtime_of(request), who.actor, source_id)
    return Response(status_code=204)


@router.post(
    "/{source_id}/write-keys/rotate",
    status_code=201,
    response_model=Source,
    summary="Issue a new write key; older keys keep working for grace_seconds (default 1 day)",
)
async def rotate_write_key(
    request: Request,
    source_id: str,
    body: Annotated[WriteKeyRotation | None, Body()] = None,
    who: Principal = Editor,
) -> Response:
    rt = runtime_of(request)
    rotation = body or WriteKeyRotation()
    return await run_idempotent(
        request,
        who,
        lambda: control.rotate_write_key(rt, who.actor, source_id, rotation),
        replay=lambda source_id: control.get(rt, who.org_id, source_id),
    )


@router.delete("/{source_id}/write-keys/{key_id}", status_code=204, summary="Revoke a write key")
async def revoke_write_key(
    request: Request, source_id: str, key_id: str, who: Principal = Admin
) -> Response:
    await control.revoke_write_key(runtime_of(request), who.actor, source_id, key_id)
    return Response(status_code=204)
