"""First start: an organisation and an owner token, printed once and saved 0600."""

from __future__ import annotations

import os
from pathlib import Path

from eventrelay.runtime import Runtime
from eventrelay.store import audit, orgs
from eventrelay.store import tokens as token_store
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
