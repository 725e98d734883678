"""/v1/admin/catalog: every integration type with its config schema."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from eventrelay.api.deps import Principal, Viewer
from eventrelay.api.schemas import ERROR_RESPONSES, CatalogEntry
from eventrelay.destinations import registry
from eventrelay.errors import not_found

router = APIRouter(prefix="/v1/admin/catalog", tags=["catalog"], responses=ERROR_RESPONSES)


@router.get("", summary="All integration types")
async def list_catalog(who: Principal = Viewer) -> dict[str, list[dict[str, Any]]]:
    return {"data": [registry.catalog_entry(d) for d in registry.DESTINATIONS.values()]}


@router.get("/{type}", response_model=CatalogEntry, summary="One integration type")
async def get_catalog_entry(
    type_name: Annotated[str, Path(alias="type", max_length=40)], who: Principal = Viewer
) -> dict[str, Any]:
    destination = registry.get(type_name)
    if destination is None:
        raise not_found("integration type")
    return registry.catalog_entry(destination)
