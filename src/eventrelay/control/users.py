"""Console users: invite, change role, deactivate, reactivate, password set/change/reset.

Invitations and resets by an admin hand out a one-time setup link (shown once, stored hashed,
valid 7 days); whoever opens it chooses the password. Only an owner grants the owner role or
changes an owner. Deactivation, reset and password change end the user's sessions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from eventrelay.control.auth import normalise_email
from eventrelay.control.common import Name, conflict
from eventrelay.control.passwords import check_policy, hash_password, verify_password
from eventrelay.core.roles import at_least
from eventrelay.errors import ApiError, not_found
from eventrelay.ids import new_secret_token
from eventrelay.runtime import Runtime
from eventrelay.store import audit, sessions
from eventrelay.store import users as store
from eventrelay.store.audit import Actor
from eventrelay.timeutil import iso_seconds, utcnow

Role = Literal["viewer", "editor", "admin", "owner"]
SETUP_PREFIX = "eru"
SETUP_VALID = timedelta(days=7)


class Email(BaseModel):
    email: str = Field(min_length=3, max_length=254)

    @field_validator("email")
    @classmethod
    def _looks_like_email(cls, value: str) -> str:
        value = normalise_email(value)
        local, at, domain = value.partition("@")
        if not at or not local or "." not in domain or any(c.isspace() for c in value):
            raise ValueError("not an email address")
        return value


class UserInvite(Email):
    model_config = ConfigDict(extra="forbid")
    name: Name
    role: Role


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    role: Role | None = None


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(max_length=256)
    new_password: str = Field(max_length=256)


class PasswordSetup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=100)
    password: str = Field(max_length=256)


def present(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "email": row["email"],
        "name": row["name"],
        "role": row["role"],
        "status": row["status"],
        "created_by": row["created_by"],
        "created_at": iso_seconds(row["created_at"]),
        "last_login_at": iso_seconds(row["last_login_at"]),
    }


def _may_manage(actor_role: str, target_role: str) -> None:
    if target_role == "owner" and not at_least(actor_role, "owner"):
        raise ApiError(
            403, "forbidden", "only an owner can grant the owner role or change an owner"
        )


def _setup_link() -> tuple[str, dict[str, Any]]:
    secret = new_secret_token(SETUP_PREFIX)
    fields = {
        "setup_token_hash": store.hash_secret(secret),
        "setup_expires_at": utcnow() + SETUP_VALID,
    }
    return secret, fields


def _with_setup(row: Mapping[str, Any], secret: str) -> dict[str, Any]:
    return {**present(row), "setup_token": secret, "setup_path": f"/#/setup?token={secret}"}


async def invite(rt: Runtime, actor: Actor, actor_role: str, body: UserInvite) -> dict[str, Any]:
    _may_manage(actor_role, body.role)
    secret, setup = _setup_link()
    async with rt.db.transaction() as conn:
        if await store.by_email(conn, body.email) is not None:
            raise conflict("a user with this email exists")
        row = await store.create(
            conn,
            {
                "org_id": actor.org_id,
                "email": body.email,
                "name": body.name,
                "role": body.role,
                "status": "invited",
                "created_by": actor.name,
                **setup,
            },
        )
        await audit.record(
            conn,
            actor,
            "user.invited",
            "user",
            str(row["id"]),
            {"email": {"old": None, "new": body.email}, "role": {"old": None, "new": body.role}},
        )
    return _with_setup(row, secret)


async def create_with_password(
    rt: Runtime, actor: Actor, email: str, name: str, role: str, password: str
) -> dict[str, Any]:
    """An active user straight away (the CLI and the first-start bootstrap)."""
    email = Email(email=email).email
    check_policy(password, email)
    hashed = await hash_password(password)
    async with rt.db.transaction() as conn:
        if await store.by_email(conn, email) is not None:
            raise conflict("a user with this email exists")
        row = await store.create(
            conn,
            {
                "org_id": actor.org_id,
                "email": email,
                "name": name,
                "role": role,
                "status": "active",
                "password_hash": hashed,
                "created_by": actor.name,
            },
        )
        await audit.record(
            conn,
            actor,
            "user.created",
            "user",
            str(row["id"]),
            {"email": {"old": None, "new": email}, "role": {"old": None, "new": role}},
        )
    return present(row)


async def _target(conn: Any, actor: Actor, actor_role: str, user_id: str) -> Mapping[str, Any]:
    row = await store.get(conn, actor.org_id, user_id)
    if row is None:
        raise not_found("user")
    _may_manage(actor_role, str(row["role"]))
    return row


async def update(
    rt: Runtime, actor: Actor, actor_role: str, user_id: str, body: UserUpdate
) -> dict[str, Any]:
    if body.role is not None:
        _may_manage(actor_role, body.role)
    async with rt.db.transaction() as conn:
        row = await _target(conn, actor, actor_role, user_id)
        if body.role not in (None, row["role"]) and user_id == actor.token_id:
            raise conflict("you cannot change your own role")
        changes = {
            key: {"old": row[key], "new": value}
            for key, value in body.model_dump(exclude_none=True).items()
            if row[key] != value
        }
        if changes:
            await store.set_fields(conn, user_id, **{k: v["new"] for k, v in changes.items()})
            await audit.record(conn, actor, "user.updated", "user", user_id, changes)
        updated = await store.get(conn, actor.org_id, user_id)
    assert updated is not None
    return present(updated)


async def set_active(
    rt: Runtime, actor: Actor, actor_role: str, user_id: str, active: bool
) -> dict[str, Any]:
    async with rt.db.transaction() as conn:
        row = await _target(conn, actor, actor_role, user_id)
        if user_id == actor.token_id:
            raise conflict("you cannot deactivate yourself")
        new = ("active" if row["password_hash"] else "invited") if active else "deactivated"
        if new != row["status"]:
            await store.set_fields(conn, user_id, status=new)
            if not active:
                await sessions.revoke_all_of(conn, user_id, "deactivated")
            action = "user.reactivated" if active else "user.deactivated"
            changes = {"status": {"old": row["status"], "new": new}}
            await audit.record(conn, actor, action, "user", user_id, changes)
        updated = await store.get(conn, actor.org_id, user_id)
    assert updated is not None
    return present(updated)


async def reset_password(
    rt: Runtime, actor: Actor, actor_role: str, user_id: str
) -> dict[str, Any]:
    """The old password stops working now; the user sets a new one through the link."""
    secret, setup = _setup_link()
    async with rt.db.transaction() as conn:
        row = await _target(conn, actor, actor_role, user_id)
        if row["status"] == "deactivated":
            raise conflict("the user is deactivated: reactivate them first")
        await store.set_fields(conn, user_id, password_hash=None, status="invited", **setup)
        await sessions.revoke_all_of(conn, user_id, "password_reset")
        await audit.record(
            conn,
            actor,
            "user.password_reset",
            "user",
            user_id,
            {"password": {"old": "***", "new": None}},
        )
        updated = await store.get(conn, actor.org_id, user_id)
    assert updated is not None
    return _with_setup(updated, secret)


async def complete_setup(
    rt: Runtime, body: PasswordSetup, ip: str | None, agent: str | None
) -> dict[str, Any]:
    async with rt.db.read() as conn:
        row = await store.by_setup_token(conn, body.token)
    expired = row is None or row["setup_expires_at"] is None or row["setup_expires_at"] < utcnow()
    if row is None or expired or row["status"] == "deactivated":
        raise ApiError(
            404, "not_found", "this link is unknown, used or expired: ask an admin for a new one"
        )
    check_policy(body.password, str(row["email"]))
    hashed = await hash_password(body.password)
    async with rt.db.transaction() as conn:
        await store.set_fields(
            conn,
            str(row["id"]),
            password_hash=hashed,
            status="active",
            setup_token_hash=None,
            setup_expires_at=None,
        )
        actor = Actor(str(row["org_id"]), str(row["id"]), str(row["email"]), ip, agent)
        await audit.record(
            conn,
            actor,
            "user.password_set",
            "user",
            str(row["id"]),
            {"status": {"old": row["status"], "new": "active"}},
        )
        row = await store.get_any(conn, str(row["id"]))
    assert row is not None
    return present(row)


async def change_password(
    rt: Runtime, actor: Actor, session_id: str | None, body: PasswordChange
) -> None:
    """By the user themselves; their other sessions end (this one stays)."""
    user_id = actor.token_id or ""
    async with rt.db.read() as conn:
        row = await store.get(conn, actor.org_id, user_id)
    if row is None:
        raise not_found("user")
    if not await verify_password(row["password_hash"], body.current_password):
        raise ApiError(
            422,
            "validation_error",
            "current_password: wrong password",
            details=[{"field": "current_password", "message": "wrong password"}],
        )
    check_policy(body.new_password, str(row["email"]))
    hashed = await hash_password(body.new_password)
    async with rt.db.transaction() as conn:
        await store.set_fields(conn, user_id, password_hash=hashed)
        await sessions.revoke_all_of(conn, user_id, "password_changed", keep=session_id)
        await audit.record(
            conn,
            actor,
            "user.password_changed",
            "user",
            user_id,
            {"password": {"old": "***", "new": "***"}},
        )
