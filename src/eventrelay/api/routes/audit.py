"""/v1/admin/audit-log (admin and owner)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from eventrelay.api.deps import Admin, Principal, runtime_of
from eventrelay.api.paging import Cursor, Limit, page_or_422
from eventrelay.api.schemas import ERROR_RESPONSES, AuditEntryPage
from eventrelay.store import audit as store
from eventrelay.store.tables import audit_log as table
from eventrelay.timeutil import iso_millis

router = APIRouter(prefix="/v1/admin/audit-log", tags=["audit"], responses=ERROR_RESPONSES)


def _actor(actor_id: str | None, name: str) -> dict[str, str | None]:
    """A token (tok_...) or a console user (usr_...; `name` is their email)."""
    if actor_id and actor_id.startswith("usr_"):
        return {"token_id": None, "user_id": actor_id, "name": name}
    return {"token_id": actor_id, "user_id": None, "name": name}


def present(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "action": row["action"],
        "actor": _actor(row["actor_token_id"], row["actor_name"]),
        "resource_type": row["resource_type"],
        "resource_id": row["resource_id"],
        "changes": row["changes"],
        "ip": row["ip"],
        "user_agent": row["user_agent"],
        "timestamp": iso_millis(row["created_at"]),
    }


@router.get("", response_model=AuditEntryPage, summary="Audit log, newest first")
async def list_audit_log(
    request: Request,
    resource_type: Annotated[str | None, Query(max_length=32)] = None,
    resource_id: Annotated[str | None, Query(max_length=40)] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
    who: Principal = Admin,
) -> dict[str, Any]:
    query = store.list_query(who.org_id, resource_type, resource_id)
    async with runtime_of(request).db.read() as conn:
        rows, next_cursor = await page_or_422(
            conn, query, table.c.pk, cursor, limit, newest_first=True
        )
    return {
        "data": [present(r) for r in rows],
        "next_cursor": next_cursor,
        "has_more": next_cursor is not None,
    }
