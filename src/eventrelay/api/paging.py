"""Query parameters and page rendering shared by every list endpoint."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from fastapi import Query
from sqlalchemy import Column, Select
from sqlalchemy.ext.asyncio import AsyncConnection

from eventrelay.errors import invalid
from eventrelay.store.paging import BadCursor, fetch_page

Cursor = Annotated[str | None, Query(max_length=200, description="From the previous page.")]
Limit = Annotated[int, Query(ge=1, le=100, description="Items per page (max 100).")]


async def page_or_422(
    conn: AsyncConnection,
    query: Select[Any],
    pk: Column[int],
    cursor: str | None,
    limit: int,
    newest_first: bool = False,
) -> tuple[Sequence[Mapping[str, Any]], str | None]:
    try:
        return await fetch_page(conn, query, pk, cursor, limit, newest_first)
    except BadCursor:
        raise invalid("cursor", "is not a cursor this API returned") from None
