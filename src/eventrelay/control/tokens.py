"""Admin tokens: create (plaintext shown once), list, revoke."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from eventrelay.control.common import Name, conflict
from eventrelay.errors import not_found
from eventrelay.runtime import Runtime
from eventrelay.store import audit
from eventrelay.store import tokens as store
from eventrelay.store.audit import Actor
from eventrelay.timeutil import iso_seconds

Role = Literal["viewer", "editor", "admin", "owner"]


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    role: Role


def present(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "role": row["role"],
        "prefix": row["prefix"],
        "created_by": row["created_by"],
        "created_at": iso_seconds(row["created_at"]),
        "last_used_at": iso_seconds(row["last_used_at"]),
        "revoked_at": iso_seconds(row["revoked_at"]),
    }


async def create(rt: Runtime, actor: Actor, body: TokenCreate) -> dict[str, Any]:
    async with rt.db.transaction() as conn:
        row, secret = await store.create(
            conn, actor.org_id, body.name, body.role, created_by=actor.name
        )
        await audit.record(
            conn,
            actor,
            "token.created",
            "token",
            str(row["id"]),
            {"name": {"old": None, "new": body.name}, "role": {"old": None, "new": body.role}},
        )
    return {**present(row), "token": secret}


async def revoke(rt: Runtime, actor: Actor, token_id: str) -> None:
    async with rt.db.transaction() as conn:
        row = await store.get(conn, actor.org_id, token_id)
        if row is None or row["revoked_at"] is not None:
            raise not_found("token")
        if row["role"] == "owner" and await store.count_active_owners(conn, actor.org_id) <= 1:
            raise conflict("this is the organisation's last owner token; create another first")
        await store.revoke(conn, token_id)
        await audit.record(
            conn,
            actor,
            "token.revoked",
            "token",
            token_id,
            {"revoked": {"old": False, "new": True}},
        )
