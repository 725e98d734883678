"""Cursor pagination over a table's monotonic `pk`."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Column, Select
from sqlalchemy.ext.asyncio import AsyncConnection


class BadCursor(ValueError):
    pass


def encode_cursor(pk: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"pk": pk})).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        pk = data["pk"]
    except (binascii.Error, ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise BadCursor("cursor is not valid") from None
    # pk columns are signed 64-bit: anything else is no cursor we issued (and would overflow).
    if not isinstance(pk, int) or isinstance(pk, bool) or not 0 <= pk < 2**63:
        raise BadCursor("cursor is not valid")
    return pk


async def fetch_page(
    conn: AsyncConnection,
    query: Select[Any],
    pk: Column[int],
    cursor: str | None,
    limit: int,
    newest_first: bool = False,
) -> tuple[Sequence[Mapping[str, Any]], str | None]:
    """Rows of one page and the cursor of the next page (None on the last page)."""
    if cursor:
        after = decode_cursor(cursor)
        query = query.where(pk < after if newest_first else pk > after)
    query = query.order_by(pk.desc() if newest_first else pk.asc()).limit(limit + 1)
    rows = [row._mapping for row in (await conn.execute(query)).fetchall()]
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(int(rows[-1]["pk"]))
    return rows, None
