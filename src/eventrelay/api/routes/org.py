"""/v1/admin/organization: the calling token's organisation and its consent categories."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from eventrelay.api.deps import Admin, Principal, Viewer, runtime_of
from eventrelay.api.schemas import ERROR_RESPONSES, Organization
from eventrelay.bus import Change
from eventrelay.control.common import diff
from eventrelay.store import audit, orgs
from eventrelay.timeutil import iso_seconds

router = APIRouter(
    prefix="/v1/admin/organization", tags=["organization"], responses=ERROR_RESPONSES
)

CategoryName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]


class OrganizationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    consent_categories: Annotated[list[CategoryName], Field(min_length=1, max_length=50)]


def present(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "consent_categories": list(row["consent_categories"]),
        "created_at": iso_seconds(row["created_at"]),
        "updated_at": iso_seconds(row["updated_at"]),
    }


@router.get("", response_model=Organization, summary="The organisation of this token")
async def get_organization(request: Request, who: Principal = Viewer) -> dict[str, Any]:
    async with runtime_of(request).db.read() as conn:
        row = await orgs.get(conn, who.org_id)
    assert row is not None
    return present(row)


@router.put("", response_model=Organization, summary="Set the organisation's consent categories")
async def update_organization(
    request: Request, body: OrganizationUpdate, who: Principal = Admin
) -> dict[str, Any]:
    rt = runtime_of(request)
    categories = list(dict.fromkeys(body.consent_categories))
    async with rt.db.transaction() as conn:
        row = await orgs.get(conn, who.org_id)
        assert row is not None
        await orgs.set_categories(conn, who.org_id, categories)
        await audit.record(
            conn,
            who.actor,
            "organization.updated",
            "organization",
            who.org_id,
            diff(
                {"consent_categories": row["consent_categories"]},
                {"consent_categories": categories},
            ),
        )
        fresh = await orgs.get(conn, who.org_id)
    assert fresh is not None
    await rt.bus.publish(Change("org", who.org_id))
    return present(fresh)
