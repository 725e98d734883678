"""/v1/admin/users: console users (admin and owner; only an owner manages owners)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from eventrelay.api.account_schemas import User, UserPage, UserWithSetupLink
from eventrelay.api.deps import Admin, Principal, runtime_of
from eventrelay.api.paging import Cursor, Limit, page_or_422
from eventrelay.api.schemas import ERROR_RESPONSES
from eventrelay.control import users as control
from eventrelay.control.users import UserInvite, UserUpdate
from eventrelay.errors import not_found
from eventrelay.store import users as store
from eventrelay.store.tables import users as table

router = APIRouter(prefix="/v1/admin/users", tags=["users"], responses=ERROR_RESPONSES)


@router.get("", response_model=UserPage, summary="List users")
async def list_users(
    request: Request, cursor: Cursor = None, limit: Limit = 50, who: Principal = Admin
) -> dict[str, Any]:
    async with runtime_of(request).db.read() as conn:
        query = store.list_query(who.org_id)
        rows, next_cursor = await page_or_422(conn, query, table.c.pk, cursor, limit)
    return {
        "data": [control.present(r) for r in rows],
        "next_cursor": next_cursor,
        "has_more": next_cursor is not None,
    }


@router.post(
    "",
    status_code=201,
    response_model=UserWithSetupLink,
    summary="Invite a user: the answer holds their one-time setup link",
)
async def invite_user(request: Request, body: UserInvite, who: Principal = Admin) -> dict[str, Any]:
    return await control.invite(runtime_of(request), who.actor, who.role, body)


@router.get("/{user_id}", response_model=User, summary="Get a user")
async def get_user(request: Request, user_id: str, who: Principal = Admin) -> dict[str, Any]:
    async with runtime_of(request).db.read() as conn:
        row = await store.get(conn, who.org_id, user_id)
    if row is None:
        raise not_found("user")
    return control.present(row)


@router.patch("/{user_id}", response_model=User, summary="Change a user's name or role")
async def update_user(
    request: Request, user_id: str, body: UserUpdate, who: Principal = Admin
) -> dict[str, Any]:
    return await control.update(runtime_of(request), who.actor, who.role, user_id, body)


@router.post("/{user_id}/deactivate", response_model=User, summary="Deactivate (ends sessions)")
async def deactivate_user(request: Request, user_id: str, who: Principal = Admin) -> dict[str, Any]:
    return await control.set_active(runtime_of(request), who.actor, who.role, user_id, False)


@router.post("/{user_id}/reactivate", response_model=User, summary="Reactivate a user")
async def reactivate_user(request: Request, user_id: str, who: Principal = Admin) -> dict[str, Any]:
    return await control.set_active(runtime_of(request), who.actor, who.role, user_id, True)


@router.post(
    "/{user_id}/reset-password",
    response_model=UserWithSetupLink,
    summary="Reset a password: the old one stops working; the answer holds a setup link",
)
async def reset_user_password(
    request: Request, user_id: str, who: Principal = Admin
) -> dict[str, Any]:
    return await control.reset_password(runtime_of(request), who.actor, who.role, user_id)
