"""Organisations: the tenancy boundary. Every admin query is scoped to one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import null, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from eventrelay.core.consent import DEFAULT_CATEGORIES
from eventrelay.ids import new_id
from eventrelay.store.tables import organizations
from eventrelay.timeutil import utcnow

Row = Mapping[Any, Any]


async def create(
    conn: AsyncConnection, name: str, categories: Sequence[str] = DEFAULT_CATEGORIES
) -> Row:
    now = utcnow()
    values = {
        "id": new_id("org"),
        "name": name,
        "consent_categories": list(categories),
        "created_at": now,
        "updated_at": now,
    }
    await conn.execute(organizations.insert().values(**values))
    return values


async def get(conn: AsyncConnection, org_id: str) -> Row | None:
    row = (await conn.execute(select(organizations).where(organizations.c.id == org_id))).first()
    return row._mapping if row else None


async def first(conn: AsyncConnection) -> Row | None:
    row = (await conn.execute(select(organizations).order_by(organizations.c.pk).limit(1))).first()
    return row._mapping if row else None


async def list_all(conn: AsyncConnection) -> list[Row]:
    rows = await conn.execute(select(organizations).order_by(organizations.c.pk))
    return [r._mapping for r in rows]


async def set_categories(conn: AsyncConnection, org_id: str, categories: Sequence[str]) -> None:
    await conn.execute(
        update(organizations)
        .where(organizations.c.id == org_id)
        .values(consent_categories=list(categories), updated_at=utcnow())
    )


async def set_rules(conn: AsyncConnection, org_id: str, rules: Mapping[str, Any] | None) -> None:
    """Organisation-wide rules as validated (rules.org); None removes them."""
    await conn.execute(
        update(organizations)
        .where(organizations.c.id == org_id)
        .values(rules=dict(rules) if rules is not None else null(), updated_at=utcnow())
    )


async def all_rules(conn: AsyncConnection) -> dict[str, Any]:
    """org id -> its rules, for the organisations that have any (the ingest directory)."""
    query = select(organizations.c.id, organizations.c.rules).where(
        organizations.c.rules.is_not(None)
    )
    return {row.id: row.rules for row in await conn.execute(query) if row.rules}
