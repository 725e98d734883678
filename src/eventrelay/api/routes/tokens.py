"""/v1/admin/tokens (owner only)"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from eventrelay.api.deps import Owner, Principal, runtime_of
from eventrelay.api.idempotency import run_idempotent
from eventrelay.api.paging import Cursor, Limit, page_or_422
from eventrelay.api.schemas import ERROR_RESPONSES, TokenCreated, TokenPage
from eventrelay.control import tokens as control
from eventrelay.control.tokens import TokenCreate
from eventrelay.store.tables import tokens as table

router = APIRouter(prefix="/v1/admin/tokens", tags=["tokens"], responses=ERROR_RESPONSES)


@router.get("", response_model=TokenPage, summary="List tokens (never their secrets)")
async def list_tokens(
    request: Request, cursor: Cursor = None, limit: Limit = 50, who: Principal = Owner
) -> dict[str, Any]:
    async with runtime_of(request).db.read() as conn:
        query = table.select().where(table.c.org_id == who.org_id)
        rows, next_cursor = await page_or_422(conn, query, table.c.pk, cursor, limit)
    return {
        "data": [control.present(r) for r in rows],
        "next_cursor": next_cursor,
        "has_more": next_cursor is not None,
    }


@router.post("", status_code=201, response_model=TokenCreated, summary="Create a token")
async def create_token(request: Request, body: TokenCreate, who: Principal = Owner) -> Response:
    rt = runtime_of(request)
    # No replay: the token is shown once and never stored, not even for idempotency.
    return await run_idempotent(
        request, who, lambda: control.create(rt, who.actor, body), replay=None
    )


@router.delete("/{token_id}", status_code=204, summary="Revoke a token")
async def revoke_token(request: Request, token_id: str, who: Principal = Owner) -> Response:
    await control.revoke(runtime_of(request), who.actor, token_id)
    return Response(status_code=204)
