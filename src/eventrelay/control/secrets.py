"""Key rotation: re-encrypt every stored secret under the newest key."""

from __future__ import annotations

from eventrelay.runtime import Runtime
from eventrelay.store import integrations


async def reencrypt_all(rt: Runtime) -> int:
    async with rt.db.transaction() as conn:
        rows = await integrations.all_secrets(conn)
        for integration_id, token in rows:
            await integrations.set_secrets(conn, integration_id, rt.vault.rotate(token))
    return len(rows)
