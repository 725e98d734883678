"""The audit log: who changed what, when, from where. Written in the same transaction as the
change it records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from eventrelay.ids import new_id
from eventrelay.store.tables import audit_log
from eventrelay.timeutil import utcnow

Row = Mapping[Any, Any]


@dataclass(frozen=True, slots=True)
class Actor:
    org_id: str
    token_id: str | None
    name: str
    ip: str | None = None
    user_agent: str | None = None


async def record(
    conn: AsyncConnection,
    actor: Actor,
    action: str,
    resource_type: str,
    resource_id: str,
    changes: Mapping[str, Any],
) -> None:
    await conn.execute(
        audit_log.insert().values(
            id=new_id("aud"),
            org_id=actor.org_id,
            action=action,
            actor_token_id=actor.token_id,
            actor_name=actor.name,
            resource_type=resource_type,
            resource_id=resource_id,
            changes=dict(changes),
            ip=actor.ip,
            user_agent=(actor.user_agent or "")[:512] or None,
            created_at=utcnow(),
        )
    )


def list_query(org_id: str, resource_type: str | None, resource_id: str | None) -> Any:
    query = select(audit_log).where(audit_log.c.org_id == org_id)
    if resource_type:
        query = query.where(audit_log.c.resource_type == resource_type)
    if resource_id:
        query = query.where(audit_log.c.resource_id == resource_id)
    return query
