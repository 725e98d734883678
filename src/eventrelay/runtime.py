"""The runtime: the long-lived pieces one process holds (database, vault, bus, queue, caches),
built from Settings. The HTTP app, the workers and the CLI all start from here."""

from __future__ import annotations

from dataclasses import dataclass, field

from eventrelay.bus import ConfigBus
from eventrelay.settings import Settings
from eventrelay.store.db import Database
from eventrelay.store.vault import Vault, load_keys


@dataclass
class Runtime:
    settings: Settings
    db: Database
    vault: Vault
    bus: ConfigBus = field(default_factory=ConfigBus)

    @classmethod
    def create(cls, settings: Settings, create_key: bool = True) -> Runtime:
        # The data directory holds the key file and the database: owner-only.
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        secret = settings.secret_key.get_secret_value() if settings.secret_key else None
        vault = Vault(load_keys(secret, settings.key_file, create=create_key))
        return cls(settings=settings, db=Database(settings.resolved_database_url), vault=vault)

    async def close(self) -> None:
        await self.bus.close()
        await self.db.close()
