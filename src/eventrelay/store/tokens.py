"""Admin API tokens: stored as SHA-256 hashes (the tokens are 238-bit random, so a fast hash is
enough); the plaintext exists only in the response that creates it."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from eventrelay.ids import new_id, new_secret_token
from eventrelay.store.tables import tokens
from eventrelay.timeutil import utcnow

Row = Mapping[Any, Any]
TOKEN_PREFIX = "ert"


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create(
    conn: AsyncConnection, org_id: str, name: str, role: str, created_by: str
) -> tuple[Row, str]:
    secret = new_secret_token(TOKEN_PREFIX)
    values = {
        "id": new_id("tok"),
        "org_id": org_id,
        "name": name,
        "role": role,
        "token_hash": hash_token(secret),
        "prefix": secret[:8],
        "created_by": created_by,
        "created_at": utcnow(),
        "last_used_at": None,
        "revoked_at": None,
    }
    result = await conn.execute(tokens.insert().values(**values))
    values["pk"] = result.inserted_primary_key[0] if result.inserted_primary_key else None
    return values, secret


async def find_active(conn: AsyncConnection, secret: str) -> Row | None:
    row = (
        await conn.execute(
            select(tokens).where(
                tokens.c.token_hash == hash_token(secret), tokens.c.revoked_at.is_(None)
            )
        )
    ).first()
    return row._mapping if row else None


async def get(conn: AsyncConnection, org_id: str, token_id: str) -> Row | None:
    row = (
        await conn.execute(select(tokens).where(tokens.c.org_id == org_id, tokens.c.id == token_id))
    ).first()
    return row._mapping if row else None


async def get_any(conn: AsyncConnection, token_id: str) -> Row | None:
    row = (await conn.execute(select(tokens).where(tokens.c.id == token_id))).first()
    return row._mapping if row else None


async def list_all(conn: AsyncConnection, org_id: str | None = None) -> list[Row]:
    query = select(tokens).order_by(tokens.c.pk)
    if org_id:
        query = query.where(tokens.c.org_id == org_id)
    return [r._mapping for r in await conn.execute(query)]


async def revoke(conn: AsyncConnection, token_id: str) -> None:
    await conn.execute(update(tokens).where(tokens.c.id == token_id).values(revoked_at=utcnow()))


async def count_active_owners(conn: AsyncConnection, org_id: str) -> int:
    query = select(func.count()).where(
        tokens.c.org_id == org_id, tokens.c.role == "owner", tokens.c.revoked_at.is_(None)
    )
    return int((await conn.execute(query)).scalar_one())


async def count_all(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(tokens))).scalar_one())


async def touch(conn: AsyncConnection, token_id: str, when: datetime) -> None:
    await conn.execute(update(tokens).where(tokens.c.id == token_id).values(last_used_at=when))
