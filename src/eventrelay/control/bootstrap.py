"""First start: an organisation and an owner token, printed once and saved 0600; and, when
EVENTRELAY_OWNER_EMAIL and EVENTRELAY_OWNER_PASSWORD are set, the first owner user of the console
(else `eventrelay users create --role owner` makes one)."""

from __future__ import annotations

import os
from pathlib import Path

from eventrelay.control.users import create_with_password
from eventrelay.runtime import Runtime
from eventrelay.store import audit, orgs
from eventrelay.store import tokens as token_store
from eventrelay.store import users as user_store
from eventrelay.store.audit import Actor
from eventrelay.store.migrate import hold_setup_lock

SYSTEM = "system"


async def ensure_owner(rt: Runtime) -> str | None:
    """Create the default organisation and its owner token when the database is empty.

    Returns the new token's plaintext (only the first time), else None.
    """
    async with rt.db.transaction() as conn:
        await hold_setup_lock(conn)  # API processes starting together create one owner token
        if await token_store.count_all(conn) > 0:
            return None
        org = await orgs.first(conn) or await orgs.create(conn, "Default organisation")
        row, secret = await token_store.create(conn, org["id"], "owner", "owner", SYSTEM)
        await audit.record(
            conn,
            Actor(org_id=org["id"], token_id=None, name=SYSTEM),
            "token.created",
            "token",
            str(row["id"]),
            {"name": {"old": None, "new": "owner"}, "role": {"old": None, "new": "owner"}},
        )
    write_secret_file(rt.settings.owner_token_file, secret)
    return secret


def write_secret_file(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    os.chmod(path, 0o600)


async def ensure_owner_user(rt: Runtime) -> str | None:
    """Create the owner user from the settings when there is no user yet; returns its email."""
    email, password = rt.settings.owner_email, rt.settings.owner_password
    if not email or password is None:
        return None
    async with rt.db.read() as conn:
        if await user_store.count_all(conn) > 0:
            return None
        org = await orgs.first(conn)
    if org is None:
        return None
    actor = Actor(org_id=str(org["id"]), token_id=None, name=SYSTEM)
    user = await create_with_password(
        rt, actor, email, "Owner", "owner", password.get_secret_value()
    )
    return str(user["email"])
