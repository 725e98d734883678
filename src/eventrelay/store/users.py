"""Console users: email, role, status, Argon2 password hash, one-time setup link."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from eventrelay.ids import new_id
from eventrelay.store.tables import users
from eventrelay.timeutil import utcnow

Row = Mapping[Any, Any]


def hash_secret(secret: str) -> str:
    """Setup links and refresh tokens are 238-bit random: a fast hash is enough."""
    return hashlib.sha256(secret.encode()).hexdigest()


async def create(conn: AsyncConnection, values: dict[str, Any]) -> Row:
    now = utcnow()
    row = {
        "id": new_id("usr"),
        "password_hash": None,
        "setup_token_hash": None,
        "setup_expires_at": None,
        "last_login_at": None,
        "created_at": now,
        "updated_at": now,
        **values,
    }
    await conn.execute(users.insert().values(**row))
    return row


async def get(conn: AsyncConnection, org_id: str, user_id: str) -> Row | None:
    query = select(users).where(users.c.org_id == org_id, users.c.id == user_id)
    row = (await conn.execute(query)).first()
    return row._mapping if row else None


async def get_any(conn: AsyncConnection, user_id: str) -> Row | None:
    row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
    return row._mapping if row else None


async def by_email(conn: AsyncConnection, email: str) -> Row | None:
    row = (await conn.execute(select(users).where(users.c.email == email))).first()
    return row._mapping if row else None


async def by_setup_token(conn: AsyncConnection, secret: str) -> Row | None:
    query = select(users).where(users.c.setup_token_hash == hash_secret(secret))
    row = (await conn.execute(query)).first()
    return row._mapping if row else None


async def set_fields(conn: AsyncConnection, user_id: str, **values: Any) -> None:
    values["updated_at"] = utcnow()
    await conn.execute(update(users).where(users.c.id == user_id).values(**values))


async def touch_login(conn: AsyncConnection, user_id: str, when: datetime) -> None:
    await conn.execute(update(users).where(users.c.id == user_id).values(last_login_at=when))


async def count_all(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(users))).scalar_one())


async def count_active_owners(conn: AsyncConnection, org_id: str) -> int:
    query = select(func.count()).where(
        users.c.org_id == org_id, users.c.role == "owner", users.c.status == "active"
    )
    return int((await conn.execute(query)).scalar_one())


def list_query(org_id: str) -> Any:
    return select(users).where(users.c.org_id == org_id)
