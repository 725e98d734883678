"""Sources: create, update, delete, write-key rotation and revocation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from eventrelay.bus import Change
from eventrelay.control.common import Name, conflict, diff
from eventrelay.errors import ApiError, not_found
from eventrelay.runtime import Runtime
from eventrelay.store import audit
from eventrelay.store import sources as store
from eventrelay.store.audit import Actor
from eventrelay.timeutil import iso_seconds, utcnow

DEFAULT_GRACE_SECONDS = 24 * 3600
MAX_GRACE_SECONDS = 30 * 24 * 3600


def _check_origin(value: str) -> str:
    if value == "*":
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError("must be '*' or an origin like https://shop.example.com")
    return value.rstrip("/")


Origin = Annotated[str, Field(max_length=300), AfterValidator(_check_origin)]


class SourceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    consent_default: Literal["deny", "allow"] = "deny"
    allowed_origins: Annotated[list[Origin], Field(max_length=100)] = ["*"]


class SourceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    consent_default: Literal["deny", "allow"] | None = None
    allowed_origins: Annotated[list[Origin], Field(max_length=100)] | None = None


class WriteKeyRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grace_seconds: int = Field(
        default=DEFAULT_GRACE_SECONDS,
        ge=0,
        le=MAX_GRACE_SECONDS,
        description="How long the older keys keep working (default one day, at most 30 days; "
        f"0: they stop now). At most {store.MAX_ACTIVE_KEYS} keys work at once: beyond that the "
        "oldest are revoked at once.",
    )


def present(row: Mapping[str, Any], keys: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    now = utcnow()
    active = [
        k
        for k in keys
        if k["revoked_at"] is None and (k["expires_at"] is None or k["expires_at"] > now)
    ]
    return {
        "id": row["id"],
        "name": row["name"],
        "write_key": active[-1]["key"] if active else None,
        "write_keys": [
            {
                "id": k["id"],
                "key": k["key"],
                "created_at": iso_seconds(k["created_at"]),
                "expires_at": iso_seconds(k["expires_at"]),
                "revoked_at": iso_seconds(k["revoked_at"]),
            }
            for k in keys
        ],
        "consent_default": row["consent_default"],
        "allowed_origins": list(row["allowed_origins"]),
        "created_at": iso_seconds(row["created_at"]),
        "updated_at": iso_seconds(row["updated_at"]),
    }


def _fields(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "consent_default": row["consent_default"],
        "allowed_origins": list(row["allowed_origins"]),
    }


async def create(rt: Runtime, actor: Actor, body: SourceCreate) -> dict[str, Any]:
    async with rt.db.transaction() as conn:
        source_id = await store.create(
            conn, actor.org_id, body.name, body.consent_default, body.allowed_origins
        )
        row = await store.get(conn, actor.org_id, source_id)
        assert row is not None
        keys = (await store.keys_for(conn, [source_id]))[source_id]
        await audit.record(
            conn, actor, "source.created", "source", source_id, diff({}, _fields(row))
        )
    await rt.bus.publish(Change("source", source_id))
    return present(row, keys)


async def get(rt: Runtime, org_id: str, source_id: str) -> dict[str, Any]:
    async with rt.db.transaction() as conn:
        row = await store.get(conn, org_id, source_id)
        if row is None:
            raise not_found("source")
        keys = (await store.keys_for(conn, [source_id]))[source_id]
    return present(row, keys)


async def update(
    rt: Runtime, actor: Actor, source_id: str, body: SourceUpdate, dry_run: bool = False
) -> dict[str, Any]:
    """Apply `body` (a no-op writes nothing); `dry_run`: return {"changes": ...} only."""
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if not changes:
        raise ApiError(
            422,
            "validation_error",
            "body: give at least one of name, consent_default, allowed_origins",
            [{"field": "body", "message": "no updatable field given"}],
        )
    async with rt.db.transaction() as conn:
        row = await store.get(conn, actor.org_id, source_id)
        if row is None:
            raise not_found("source")
        before = _fields(row)
        after = {**before, **changes}
        changed = diff(before, after)
        if dry_run:
            return {"changes": changed}
        if changed:
            await store.update_fields(conn, source_id, changes)
            await audit.record(conn, actor, "source.updated", "source", source_id, changed)
            row = await store.get(conn, actor.org_id, source_id)
            assert row is not None
        keys = (await store.keys_for(conn, [source_id]))[source_id]
    if changed:
        await rt.bus.publish(Change("source", source_id))
    return present(row, keys)


async def delete(rt: Runtime, actor: Actor, source_id: str) -> None:
    async with rt.db.transaction() as conn:
        row = await store.get(conn, actor.org_id, source_id)
        if row is None:
            raise not_found("source")
        count = await store.count_live_integrations(conn, source_id)
        if count:
            raise conflict(
                f"source has {count} integration(s); delete them before deleting the source"
            )
        await store.soft_delete(conn, source_id)
        await audit.record(
            conn, actor, "source.deleted", "source", source_id, diff(_fields(row), {})
        )
    await rt.bus.publish(Change("source", source_id))


async def rotate_write_key(
    rt: Runtime, actor: Actor, source_id: str, body: WriteKeyRotation
) -> dict[str, Any]:
    async with rt.db.transaction() as conn:
        row = await store.get(conn, actor.org_id, source_id)
        if row is None:
            raise not_found("source")
        key = await store.add_write_key(conn, source_id)
        expires_at = utcnow() + timedelta(seconds=body.grace_seconds)
        revoked = await store.retire_older_keys(conn, source_id, key["id"], expires_at)
        changes: dict[str, Any] = {
            "write_key_id": {"old": None, "new": key["id"]},
            "grace_seconds": {"old": None, "new": body.grace_seconds},
        }
        if revoked:
            changes["revoked_write_key_ids"] = {"old": revoked, "new": None}
        await audit.record(conn, actor, "source.write_key_created", "source", source_id, changes)
        keys = (await store.keys_for(conn, [source_id]))[source_id]
    await rt.bus.publish(Change("source", source_id))
    return present(row, keys)


async def revoke_write_key(rt: Runtime, actor: Actor, source_id: str, key_id: str) -> None:
    async with rt.db.transaction() as conn:
        row = await store.get(conn, actor.org_id, source_id)
        if row is None:
            raise not_found("source")
        if not await store.revoke_key(conn, source_id, key_id):
            raise not_found("write key")
        await audit.record(
            conn,
            actor,
            "source.write_key_revoked",
            "source",
            source_id,
            {"write_key_id": {"old": key_id, "new": None}},
        )
    await rt.bus.publish(Change("source", source_id))
