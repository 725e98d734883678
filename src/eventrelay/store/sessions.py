"""Login sessions and their refresh tokens (rotated on every use), and failed-login records."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from eventrelay.ids import new_id
from eventrelay.store.tables import login_failures, refresh_tokens, sessions, users
from eventrelay.store.users import hash_secret
from eventrelay.timeutil import utcnow

Row = Mapping[Any, Any]


async def create(
    conn: AsyncConnection, user_id: str, expires_at: datetime, ip: str | None, agent: str | None
) -> str:
    session_id = new_id("ses")
    await conn.execute(
        sessions.insert().values(
            id=session_id,
            user_id=user_id,
            created_at=utcnow(),
            expires_at=expires_at,
            ip=ip,
            user_agent=(agent or "")[:512] or None,
        )
    )
    return session_id


async def add_refresh_token(conn: AsyncConnection, session_id: str, secret: str) -> None:
    await conn.execute(
        refresh_tokens.insert().values(
            session_id=session_id, token_hash=hash_secret(secret), created_at=utcnow()
        )
    )


async def find_refresh_token(conn: AsyncConnection, secret: str) -> Row | None:
    query = (
        select(
            refresh_tokens.c.pk,
            refresh_tokens.c.used_at,
            sessions.c.id.label("session_id"),
            sessions.c.user_id,
            sessions.c.expires_at,
            sessions.c.revoked_at,
        )
        .join(sessions, sessions.c.id == refresh_tokens.c.session_id)
        .where(refresh_tokens.c.token_hash == hash_secret(secret))
    )
    row = (await conn.execute(query)).first()
    return row._mapping if row else None


async def mark_used(conn: AsyncConnection, token_pk: int) -> bool:
    """Spend a refresh token; False when it was already spent (by a concurrent request too)."""
    result = await conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.pk == token_pk, refresh_tokens.c.used_at.is_(None))
        .values(used_at=utcnow())
    )
    return result.rowcount == 1


async def revoke(conn: AsyncConnection, session_id: str, reason: str) -> None:
    await conn.execute(
        update(sessions)
        .where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )


async def revoke_all_of(
    conn: AsyncConnection, user_id: str, reason: str, keep: str | None = None
) -> None:
    query = update(sessions).where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
    if keep:
        query = query.where(sessions.c.id != keep)
    await conn.execute(query.values(revoked_at=utcnow(), revoked_reason=reason))


async def active_user(conn: AsyncConnection, session_id: str, now: datetime) -> Row | None:
    """The user of a live session (not revoked, not expired, user active), else None."""
    query = (
        select(users)
        .join(sessions, sessions.c.user_id == users.c.id)
        .where(
            sessions.c.id == session_id,
            sessions.c.revoked_at.is_(None),
            sessions.c.expires_at > now,
            users.c.status == "active",
        )
    )
    row = (await conn.execute(query)).first()
    return row._mapping if row else None


async def count_failures(conn: AsyncConnection, key: str, since: datetime) -> int:
    query = select(func.count()).where(
        login_failures.c.key == key, login_failures.c.created_at > since
    )
    return int((await conn.execute(query)).scalar_one())


async def oldest_failure(conn: AsyncConnection, key: str, since: datetime) -> datetime | None:
    query = select(func.min(login_failures.c.created_at)).where(
        login_failures.c.key == key, login_failures.c.created_at > since
    )
    value: datetime | None = (await conn.execute(query)).scalar_one()
    return value


async def record_failure(conn: AsyncConnection, keys: list[str], forget_before: datetime) -> None:
    await conn.execute(login_failures.insert(), [{"key": k, "created_at": utcnow()} for k in keys])
    await conn.execute(delete(login_failures).where(login_failures.c.created_at <= forget_before))


async def clear_failures(conn: AsyncConnection, key: str) -> None:
    await conn.execute(delete(login_failures).where(login_failures.c.key == key))
