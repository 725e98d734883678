"""/v1/admin/organization: the calling token's organisation, its consent categories and its
organisation-wide rules (drop, redact, hash; applied at ingest, rules/org.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from eventrelay.api.deps import Admin, Editor, Principal, Viewer, runtime_of
from eventrelay.api.schemas import ERROR_RESPONSES, Organization
from eventrelay.bus import Change
from eventrelay.control.common import diff
from eventrelay.control.rules import OrgEvaluateBody, evaluate_org, org_rules_or_422
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


Condition = str | dict[str, Any]


class OrganizationRules(BaseModel):
    """Applied at ingest to every event of the organisation, before any integration's rules."""

    model_config = ConfigDict(extra="forbid")
    drop: list[Condition] = Field(
        default_factory=list,
        description="Conditions (FQL or the structured form): an event any of them matches is"
        " dropped, never stored.",
    )
    redact: list[str] = Field(
        default_factory=list, description="Paths removed from every event (properties.email)."
    )
    hash: list[str] = Field(
        default_factory=list,
        description="Paths whose string or number value is replaced by its SHA-256 hex digest.",
    )


@router.get(
    "/rules",
    response_model=OrganizationRules,
    summary="The organisation's rules (applied at ingest to every event)",
)
async def get_rules(request: Request, who: Principal = Viewer) -> dict[str, Any]:
    async with runtime_of(request).db.read() as conn:
        row = await orgs.get(conn, who.org_id)
    assert row is not None
    return stored_rules(row)


@router.put(
    "/rules",
    response_model=OrganizationRules,
    summary="Set the organisation's rules: drop events by condition, redact or hash paths",
)
async def put_rules(
    request: Request, body: OrganizationRules, who: Principal = Admin
) -> dict[str, Any]:
    rt = runtime_of(request)
    compiled = org_rules_or_422(body.model_dump())  # a 422 with field and position; nothing saved
    rules = compiled.raw
    async with rt.db.transaction() as conn:
        row = await orgs.get(conn, who.org_id)
        assert row is not None
        before = stored_rules(row)
        await orgs.set_rules(conn, who.org_id, None if compiled.empty else rules)
        changes = diff(
            {f"rules.{k}": v for k, v in before.items()},
            {f"rules.{k}": v for k, v in rules.items()},
        )
        if changes:
            await audit.record(
                conn, who.actor, "organization.rules_updated", "organization", who.org_id, changes
            )
    # Every API process reloads its directory (routing/directory.py) and applies them at once.
    await rt.bus.publish(Change("org", who.org_id))
    return rules


def stored_rules(row: Mapping[str, Any]) -> dict[str, Any]:
    """As saved, every key present (no rules: empty lists)."""
    return {"drop": [], "redact": [], "hash": [], **(row["rules"] or {})}


@router.post(
    "/rules/evaluate",
    summary="Apply organisation rules to sample events and return, per event, whether it is"
    " dropped (and by which condition) or the event as it would be stored (nothing is saved)",
)
async def evaluate_organization_rules(
    body: OrgEvaluateBody, who: Principal = Editor
) -> dict[str, Any]:
    return evaluate_org(body)
