"""Rows of the load journal (`load_batches`): one per staged batch of a file-loading
integration, from before its upload until its events are acknowledged."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from eventrelay.store.tables import load_batches
from eventrelay.timeutil import utcnow


@dataclass(frozen=True, slots=True)
class OpenBatch:
    batch_id: str
    owner: str
    refs: list[str]
    event_count: int
    created_at: datetime


def pack_ids(message_ids: Sequence[str]) -> bytes:
    # Message ids have no control characters (core/events.py), so a newline separates them.
    return zlib.compress("\n".join(message_ids).encode(), 1)


def unpack_ids(blob: bytes) -> list[str]:
    text = zlib.decompress(blob).decode()
    return text.split("\n") if text else []


async def record(
    conn: AsyncConnection,
    integration_id: str,
    batch_id: str,
    owner: str,
    refs: Sequence[str],
    message_ids: Sequence[str],
) -> None:
    """Write (or take over: same content, same id) the journal row of a batch."""
    await conn.execute(
        delete(load_batches).where(
            load_batches.c.integration_id == integration_id, load_batches.c.batch_id == batch_id
        )
    )
    await conn.execute(
        load_batches.insert().values(
            integration_id=integration_id,
            batch_id=batch_id,
            owner=owner,
            refs=list(refs),
            event_count=len(message_ids),
            message_ids=pack_ids(message_ids),
            created_at=utcnow(),
        )
    )


async def open_batches(conn: AsyncConnection, integration_id: str) -> list[OpenBatch]:
    rows = await conn.execute(
        select(
            load_batches.c.batch_id,
            load_batches.c.owner,
            load_batches.c.refs,
            load_batches.c.event_count,
            load_batches.c.created_at,
        ).where(load_batches.c.integration_id == integration_id)
    )
    return [OpenBatch(r.batch_id, r.owner, list(r.refs), r.event_count, r.created_at) for r in rows]


async def message_ids(conn: AsyncConnection, integration_id: str, batch_id: str) -> list[str]:
    blob = (
        await conn.execute(
            select(load_batches.c.message_ids).where(
                load_batches.c.integration_id == integration_id,
                load_batches.c.batch_id == batch_id,
            )
        )
    ).scalar()
    return unpack_ids(blob) if blob is not None else []


async def forget(conn: AsyncConnection, integration_id: str, batch_id: str) -> None:
    await conn.execute(
        delete(load_batches).where(
            load_batches.c.integration_id == integration_id, load_batches.c.batch_id == batch_id
        )
    )


async def prune(conn: AsyncConnection, before: datetime) -> int:
    result = await conn.execute(delete(load_batches).where(load_batches.c.created_at < before))
    return int(result.rowcount or 0)
