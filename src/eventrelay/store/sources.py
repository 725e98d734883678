"""Sources and their write keys. A source may hold several keys at once: on rotation the older
keys keep working for a grace period (`expires_at`), and at most `MAX_ACTIVE_KEYS` work at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from eventrelay.ids import new_id, new_secret_token
from eventrelay.store.tables import integrations, sources, write_keys
from eventrelay.timeutil import utcnow

Row = Mapping[Any, Any]
WRITE_KEY_PREFIX = "wk"
# The new key and up to two older ones still in their grace period: a rotation normally retires
# one key, and a second rotation may come before the first grace period ends.
MAX_ACTIVE_KEYS = 3


async def create(
    conn: AsyncConnection,
    org_id: str,
    name: str,
    consent_default: str,
    allowed_origins: Sequence[str],
) -> str:
    now = utcnow()
    source_id = new_id("src")
    await conn.execute(
        sources.insert().values(
            id=source_id,
            org_id=org_id,
            name=name,
            consent_default=consent_default,
            allowed_origins=list(allowed_origins),
            created_at=now,
            updated_at=now,
        )
    )
    await add_write_key(conn, source_id)
    return source_id


async def add_write_key(conn: AsyncConnection, source_id: str) -> Row:
    values = {
        "id": new_id("key"),
        "source_id": source_id,
        "key": new_secret_token(WRITE_KEY_PREFIX, 32),
        "created_at": utcnow(),
        "revoked_at": None,
        "expires_at": None,
    }
    await conn.execute(write_keys.insert().values(**values))
    return values


def _working(now: datetime) -> Any:
    return (
        write_keys.c.revoked_at.is_(None),
        or_(write_keys.c.expires_at.is_(None), write_keys.c.expires_at > now),
    )


async def retire_older_keys(
    conn: AsyncConnection, source_id: str, newest_id: str, expires_at: datetime
) -> list[str]:
    """After a rotation: every other working key expires at `expires_at` (or earlier, if it was
    already due), and beyond `MAX_ACTIVE_KEYS` the oldest are revoked now. Returns the ids of
    the keys revoked."""
    now = utcnow()
    await conn.execute(
        update(write_keys)
        .where(
            write_keys.c.source_id == source_id,
            write_keys.c.id != newest_id,
            *_working(now),
            or_(write_keys.c.expires_at.is_(None), write_keys.c.expires_at > expires_at),
        )
        .values(expires_at=expires_at)
    )
    working = (
        await conn.execute(
            select(write_keys.c.id)
            .where(write_keys.c.source_id == source_id, *_working(now))
            .order_by(write_keys.c.pk.desc())
        )
    ).scalars()
    surplus = list(working)[MAX_ACTIVE_KEYS:]
    if surplus:
        await conn.execute(
            update(write_keys).where(write_keys.c.id.in_(surplus)).values(revoked_at=now)
        )
    return surplus


def live_query(org_id: str) -> Any:
    return select(sources).where(sources.c.org_id == org_id, sources.c.deleted_at.is_(None))


async def get(conn: AsyncConnection, org_id: str, source_id: str) -> Row | None:
    row = (await conn.execute(live_query(org_id).where(sources.c.id == source_id))).first()
    return row._mapping if row else None


async def keys_for(conn: AsyncConnection, source_ids: Sequence[str]) -> dict[str, list[Row]]:
    """Write keys by source, oldest first (revoked ones included, for the record)."""
    result: dict[str, list[Row]] = {sid: [] for sid in source_ids}
    if not source_ids:
        return result
    rows = await conn.execute(
        select(write_keys)
        .where(write_keys.c.source_id.in_(list(source_ids)))
        .order_by(write_keys.c.pk)
    )
    for row in rows:
        result[row.source_id].append(row._mapping)
    return result


async def update_fields(conn: AsyncConnection, source_id: str, values: Mapping[str, Any]) -> None:
    await conn.execute(
        update(sources).where(sources.c.id == source_id).values(**values, updated_at=utcnow())
    )


async def soft_delete(conn: AsyncConnection, source_id: str) -> None:
    now = utcnow()
    await conn.execute(
        update(sources).where(sources.c.id == source_id).values(deleted_at=now, updated_at=now)
    )
    await conn.execute(
        update(write_keys)
        .where(write_keys.c.source_id == source_id, write_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def count_live_integrations(conn: AsyncConnection, source_id: str) -> int:
    query = select(func.count()).where(
        integrations.c.source_id == source_id, integrations.c.deleted_at.is_(None)
    )
    return int((await conn.execute(query)).scalar_one())


async def revoke_key(conn: AsyncConnection, source_id: str, key_id: str) -> bool:
    result = await conn.execute(
        update(write_keys)
        .where(
            write_keys.c.source_id == source_id,
            write_keys.c.id == key_id,
            write_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    return bool(result.rowcount)


async def all_live_with_keys(
    conn: AsyncConnection,
) -> list[tuple[Row, list[tuple[str, datetime | None]]]]:
    """Every live source of every organisation with its working write keys and when each stops
    working (None: never) (ingest cache)."""
    now = utcnow()
    rows = [
        r._mapping
        for r in await conn.execute(select(sources).where(sources.c.deleted_at.is_(None)))
    ]
    active = await conn.execute(
        select(write_keys.c.source_id, write_keys.c.key, write_keys.c.expires_at).where(
            *_working(now)
        )
    )
    keys: dict[str, list[tuple[str, datetime | None]]] = {}
    for source_id, key, expires_at in active:
        keys.setdefault(source_id, []).append((key, expires_at))
    return [(row, keys.get(row["id"], [])) for row in rows]
