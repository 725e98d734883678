"""/v1/admin/integrations/{id}/metrics and /failures"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from eventrelay.api.deps import Editor, Principal, Viewer, runtime_of
from eventrelay.api.paging import Cursor, Limit, page_or_422
from eventrelay.api.schemas import (
    ERROR_RESPONSES,
    DeliveryFailurePage,
    DeliveryMetrics,
)
from eventrelay.control.delivery_report import metrics_report, present_failure
from eventrelay.control.vendor_calls import PreviewBody, preview, send_test
from eventrelay.errors import not_found
from eventrelay.store import integrations as integration_store
from eventrelay.store.tables import delivery_failures

router = APIRouter(prefix="/v1/admin/integrations", tags=["delivery"], responses=ERROR_RESPONSES)


@router.get(
    "/{integration_id}/metrics",
    response_model=DeliveryMetrics,
    summary="Delivery summary and per-bucket series",
)
async def get_metrics(
    request: Request,
    integration_id: str,
    start: Annotated[
        datetime | None, Query(description="ISO 8601; default: one range back")
    ] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601; default: now")] = None,
    granularity: Literal["minute", "hour", "day"] = "hour",
    who: Principal = Viewer,
) -> dict[str, Any]:
    return await metrics_report(
        runtime_of(request), who.org_id, integration_id, start, end, granularity
    )


@router.get(
    "/{integration_id}/failures",
    response_model=DeliveryFailurePage,
    summary="Recent failed attempts, newest first (secrets redacted)",
)
async def list_failures(
    request: Request,
    integration_id: str,
    cursor: Cursor = None,
    limit: Limit = 50,
    who: Principal = Viewer,
) -> dict[str, Any]:
    async with runtime_of(request).db.read() as conn:
        if await integration_store.get(conn, who.org_id, integration_id) is None:
            raise not_found("integration")
        query = delivery_failures.select().where(
            delivery_failures.c.integration_id == integration_id
        )
        rows, next_cursor = await page_or_422(
            conn, query, delivery_failures.c.pk, cursor, limit, newest_first=True
        )
    return {
        "data": [present_failure(r) for r in rows],
        "next_cursor": next_cursor,
        "has_more": next_cursor is not None,
    }


@router.post(
    "/{integration_id}/preview",
    summary="The exact request(s) eventrelay would send for an event (nothing is sent)",
)
async def preview_integration(
    request: Request, integration_id: str, body: PreviewBody, who: Principal = Viewer
) -> dict[str, Any]:
    return await preview(runtime_of(request), who.org_id, integration_id, body)


@router.post(
    "/{integration_id}/test",
    summary="Send one test event the cheapest way the vendor offers; returns its answer",
)
async def test_integration(
    request: Request, integration_id: str, who: Principal = Editor
) -> dict[str, Any]:
    return await send_test(runtime_of(request), who.org_id, integration_id)
