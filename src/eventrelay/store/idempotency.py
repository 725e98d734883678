"""Idempotency keys for creating POSTs: per organisation, kept 24 hours. A finished record holds
the status and the id of what the request created, never the response body."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from eventrelay.store.tables import idempotency_keys
from eventrelay.timeutil import utcnow

Row = Mapping[Any, Any]
TTL = timedelta(hours=24)
# A claim whose request never finished (process killed mid-request) is released after this.
STALE_IN_PROGRESS = timedelta(minutes=5)


async def claim(conn: AsyncConnection, org_id: str, key: str, request_hash: str) -> Row | None:
    """Claim the key for a new request; return the existing row if someone already holds it."""
    now = utcnow()
    await conn.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.org_id == org_id,
            idempotency_keys.c.key == key,
            or_(
                idempotency_keys.c.expires_at < now,
                and_(
                    idempotency_keys.c.state == "in_progress",
                    idempotency_keys.c.created_at < now - STALE_IN_PROGRESS,
                ),
            ),
        )
    )
    try:
        async with conn.begin_nested():
            await conn.execute(
                idempotency_keys.insert().values(
                    org_id=org_id,
                    key=key,
                    request_hash=request_hash,
                    state="in_progress",
                    created_at=now,
                    expires_at=now + TTL,
                )
            )
        return None
    except IntegrityError:
        row = (
            await conn.execute(
                select(idempotency_keys).where(
                    idempotency_keys.c.org_id == org_id, idempotency_keys.c.key == key
                )
            )
        ).first()
        return row._mapping if row else None


async def complete(
    conn: AsyncConnection, org_id: str, key: str, status: int, resource_id: str
) -> None:
    await conn.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.org_id == org_id, idempotency_keys.c.key == key)
        .values(state="done", response_status=status, resource_id=resource_id)
    )


async def release(conn: AsyncConnection, org_id: str, key: str) -> None:
    await conn.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.org_id == org_id, idempotency_keys.c.key == key
        )
    )


async def purge_expired(conn: AsyncConnection) -> None:
    await conn.execute(delete(idempotency_keys).where(idempotency_keys.c.expires_at < utcnow()))
