"""Integrations: rows are soft-deleted (deleted_at) so IDs are never reused and history resolves."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from eventrelay.store.tables import integrations
from eventrelay.timeutil import utcnow

Row = Mapping[Any, Any]


def live_query(org_id: str | None = None) -> Any:
    query = select(integrations).where(integrations.c.deleted_at.is_(None))
    if org_id is not None:
        query = query.where(integrations.c.org_id == org_id)
    return query


async def insert(conn: AsyncConnection, values: Mapping[str, Any]) -> None:
    await conn.execute(integrations.insert().values(**values))


async def get(conn: AsyncConnection, org_id: str, integration_id: str) -> Row | None:
    row = (
        await conn.execute(live_query(org_id).where(integrations.c.id == integration_id))
    ).first()
    return row._mapping if row else None


async def get_any(conn: AsyncConnection, integration_id: str) -> Row | None:
    """Also deleted ones (workers resolving a queue, metrics of a deleted integration)."""
    row = (
        await conn.execute(select(integrations).where(integrations.c.id == integration_id))
    ).first()
    return row._mapping if row else None


async def all_live(conn: AsyncConnection) -> list[Row]:
    return [r._mapping for r in await conn.execute(live_query().order_by(integrations.c.pk))]


async def update_fields(
    conn: AsyncConnection, integration_id: str, values: Mapping[str, Any]
) -> None:
    await conn.execute(
        update(integrations)
        .where(integrations.c.id == integration_id)
        .values(**values, updated_at=utcnow())
    )


async def soft_delete(conn: AsyncConnection, integration_id: str) -> None:
    now = utcnow()
    await conn.execute(
        update(integrations)
        .where(integrations.c.id == integration_id)
        .values(deleted_at=now, updated_at=now, enabled=False)
    )


async def all_secrets(conn: AsyncConnection) -> list[tuple[str, str]]:
    rows = await conn.execute(select(integrations.c.id, integrations.c.secrets))
    return [(r.id, r.secrets) for r in rows]


async def set_secrets(conn: AsyncConnection, integration_id: str, token: str) -> None:
    await conn.execute(
        update(integrations).where(integrations.c.id == integration_id).values(secrets=token)
    )


async def set_delivery_state(
    conn: AsyncConnection, integration_id: str, values: Mapping[str, datetime | str | None]
) -> None:
    """Delivery bookkeeping (last_delivery_at, failing_since, error): not a user change, so
    updated_at is left alone."""
    await conn.execute(
        update(integrations).where(integrations.c.id == integration_id).values(**values)
    )
