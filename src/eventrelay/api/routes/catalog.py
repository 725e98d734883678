"""/v1/admin/catalog: every integration type with its config schema."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from eventrelay.api.deps import Principal, Viewer
from eventrelay.api.schemas import ERROR_RESPONSES, CatalogEntry
from eventrelay.destinations import registry
from eventrelay.errors import not_found

router = APIRouter(prefix="/v1/admin/catalog", tags=["catalog"], responses=ERROR_RESPONSES)


@router.get("", summary="All integration types")
async def list_catalog(who: Principal = Viewer) -> dict[str, list[dict[str, Any]]]:
    return {"data": [registry.catalog_entry(d) for d in registry.DESTINATIONS.values()]}


@router.get("/{type_}", response_model=CatalogEntry, summary="One integration type")
async def get_catalog_entry(type_: str, who: Principal = Viewer) -> dict[str, Any]:
    destination = registry.get(type_)
    if destination is None:
        raise not_found("integration type")
    return registry.catalog_entry(destination)
