"""Key rotation: re-encrypt every stored secret under the newest key.

Processes reading keys from a key file pick up a new key by themselves (store/vault.py). Keys
from EVENTRELAY_SECRET_KEY cannot change under a running process: before re-encrypting, the
rotation checks that every running process already has the newest key, and refuses otherwise
(after re-encryption such a process could no longer read any credential).
"""

from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path

from sqlalchemy import text

from eventrelay.runtime import KEY_ANNOUNCEMENT, KEY_FINGERPRINT_FILE, Runtime
from eventrelay.store import integrations


class RotationRefused(Exception):
    pass


async def rotate(rt: Runtime) -> int:
    """Re-encrypt everything with the newest key, unless a running process lacks that key."""
    missing = await processes_missing_newest_key(rt)
    if missing:
        raise RotationRefused(
            f"{missing} running eventrelay process(es) do not have the newest key of "
            "EVENTRELAY_SECRET_KEY: once re-encrypted, they could read no stored credential. "
            "Restart them with EVENTRELAY_SECRET_KEY=<new key>,<old keys> first, then run this "
            "again. Nothing was changed"
        )
    return await reencrypt_all(rt)


async def reencrypt_all(rt: Runtime) -> int:
    async with rt.db.transaction() as conn:
        rows = await integrations.all_secrets(conn)
        for integration_id, token in rows:
            await integrations.set_secrets(conn, integration_id, rt.vault.rotate(token))
    return len(rows)


async def processes_missing_newest_key(rt: Runtime) -> int:
    """How many running processes would lose access to the credentials if they were
    re-encrypted with this process's newest key (0 when keys come from a key file: every
    process reads it again)."""
    if rt.settings.secret_key is None:
        return 0
    newest = rt.vault.fingerprint
    if rt.db.is_sqlite:
        if not _queue_consumer_running(rt.settings.queue_path):
            return 0
        path = rt.settings.data_dir / KEY_FINGERPRINT_FILE
        running = path.read_text().strip() if path.exists() else ""
        return 0 if running == newest else 1
    async with rt.db.read() as conn:
        names = (
            await conn.execute(
                text(
                    "SELECT application_name FROM pg_stat_activity"
                    " WHERE datname = current_database() AND application_name LIKE :prefix"
                ),
                {"prefix": KEY_ANNOUNCEMENT + "%"},
            )
        ).scalars()
        return sum(1 for name in names if name != KEY_ANNOUNCEMENT + newest)


def _queue_consumer_running(queue_path: Path) -> bool:
    """A server delivering from the embedded queue holds its lock file (queue/sqlite.py)."""
    lock_path = queue_path.with_suffix(".lock")
    if not lock_path.exists():
        return False
    with open(lock_path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        with contextlib.suppress(OSError):
            fcntl.flock(lock, fcntl.LOCK_UN)
    return False
