"""/v1/admin/integrations"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from eventrelay.api.deps import Admin, Editor, Principal, Viewer, runtime_of
from eventrelay.api.idempotency import run_idempotent
from eventrelay.api.paging import Cursor, Limit, page_or_422
from eventrelay.api.schemas import (
    ERROR_RESPONSES,
    ChangePlan,
    Integration,
    IntegrationSummaryPage,
)
from eventrelay.control import integrations as control
from eventrelay.control.integrations import IntegrationCreate, IntegrationUpdate, StatusChange
from eventrelay.store import integrations as store
from eventrelay.store import metrics
from eventrelay.store.tables import integrations as table

router = APIRouter(
    prefix="/v1/admin/integrations", tags=["integrations"], responses=ERROR_RESPONSES
)


@router.get("", response_model=IntegrationSummaryPage, summary="List integrations")
async def list_integrations(
    request: Request,
    source_id: Annotated[str | None, Query(max_length=40)] = None,
    type: Annotated[str | None, Query(max_length=40)] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
    who: Principal = Viewer,
) -> dict[str, Any]:
    query = store.live_query(who.org_id)
    if source_id:
        query = query.where(table.c.source_id == source_id)
    if type:
        query = query.where(table.c.type == type)
    async with runtime_of(request).db.read() as conn:
        rows, next_cursor = await page_or_422(conn, query, table.c.pk, cursor, limit)
        filtered = await metrics.filtered_last_hour(conn, [r["id"] for r in rows])
    return {
        "data": [control.present_summary(r, filtered.get(r["id"])) for r in rows],
        "next_cursor": next_cursor,
        "has_more": next_cursor is not None,
    }


@router.post("", status_code=201, response_model=Integration, summary="Create an integration")
async def create_integration(
    request: Request, body: IntegrationCreate, who: Principal = Editor
) -> Response:
    rt = runtime_of(request)
    return await run_idempotent(
        request,
        who,
        lambda: control.create(rt, who.actor, body),
        replay=lambda integration_id: control.get(rt, who.org_id, integration_id),
    )


@router.get("/{integration_id}", response_model=Integration, summary="Get an integration")
async def get_integration(
    request: Request, integration_id: str, who: Principal = Viewer
) -> dict[str, Any]:
    return await control.get(runtime_of(request), who.org_id, integration_id)


@router.put(
    "/{integration_id}",
    response_model=Integration,
    summary="Update an integration (fields given change, others are kept)",
)
async def update_integration(
    request: Request, integration_id: str, body: IntegrationUpdate, who: Principal = Editor
) -> dict[str, Any]:
    return await control.update(runtime_of(request), who.actor, integration_id, body)


@router.post(
    "/{integration_id}/plan",
    response_model=ChangePlan,
    summary="What an update with this body would change (nothing is written)",
)
async def plan_integration_update(
    request: Request, integration_id: str, body: IntegrationUpdate, who: Principal = Editor
) -> dict[str, Any]:
    return await control.update(runtime_of(request), who.actor, integration_id, body, dry_run=True)


@router.delete(
    "/{integration_id}",
    status_code=204,
    summary="Delete an integration; its queued events are discarded",
)
async def delete_integration(
    request: Request, integration_id: str, who: Principal = Admin
) -> Response:
    await control.delete(runtime_of(request), who.actor, integration_id)
    return Response(status_code=204)


@router.post(
    "/{integration_id}/status",
    response_model=Integration,
    summary="Pause or resume (also leaves the error state)",
)
async def set_status(
    request: Request, integration_id: str, body: StatusChange, who: Principal = Editor
) -> dict[str, Any]:
    return await control.set_status(runtime_of(request), who.actor, integration_id, body)
