"""The runtime: the long-lived infrastructure one process holds (database, vault, config bus,
queue, routing directory, metrics), built from Settings. The HTTP app, the delivery plane
(`delivery/plane.py`) and the CLI start from here; the runtime knows nothing above it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eventrelay.bus import ConfigBus
from eventrelay.settings import Settings
from eventrelay.store.db import Database
from eventrelay.store.vault import Vault, load_keys

if TYPE_CHECKING:
    from eventrelay.queue.base import Queue
    from eventrelay.routing.directory import Directory
    from eventrelay.routing.tap import Tap
    from eventrelay.store.metrics import MetricsRecorder


# Name resolution for user-supplied targets: (host, port) -> addresses; raises OSError when the
# name does not resolve. None means the system resolver; tests inject one so that public-looking
# names never reach DNS.
Resolver = Callable[[str, int], Awaitable[list[str]]]

# Processes announce their newest key's fingerprint (store/vault.py), so that
# `eventrelay secrets rotate` can tell whether all of them already have the new key: on
# PostgreSQL in the application name of the config-bus connection, on SQLite in this file.
KEY_ANNOUNCEMENT = "eventrelay key:"
KEY_FINGERPRINT_FILE = "key.fingerprint"


def make_queue(
    settings: Settings, consumer: bool = True, holder: Mapping[str, Any] | None = None
) -> Queue:
    url = settings.queue_url
    if url and url.startswith(("nats://", "tls://")):
        from eventrelay.queue.nats import NatsQueue

        return NatsQueue(settings)
    from eventrelay.queue.sqlite import SqliteQueue

    return SqliteQueue(
        settings.queue_path,
        synchronous=settings.queue_sync,
        consumer=consumer,
        lease_seconds=settings.queue_lease_seconds,
        holder=holder,
        retention_seconds=settings.queue_retention_seconds,
    )


def make_tap(settings: Settings) -> Tap:
    """The live view, seeing the events of every API process: across machines over NATS core
    (scale-out), across the processes sharing one data directory over Unix sockets (embedded,
    `serve --processes N`)."""
    from eventrelay.routing.tap import Tap

    url = settings.queue_url
    if url and url.startswith(("nats://", "tls://")):
        from eventrelay.bus.live_nats import NatsLiveFanout

        servers = [s.strip() for s in url.split(",") if s.strip()]
        return Tap(NatsLiveFanout(servers, settings.nats_subject_prefix))
    from eventrelay.bus.live_local import UnixLiveFanout

    return Tap(UnixLiveFanout(settings.data_dir))


@dataclass
class Runtime:
    settings: Settings
    db: Database
    vault: Vault
    bus: ConfigBus
    queue: Queue | None = None
    directory: Directory | None = None
    metrics: MetricsRecorder | None = None
    tap: Tap | None = None  # the live view: events (API processes), outcomes (workers)
    # What this process is (command, address), written next to the embedded queue's consumer
    # lock so a second process on the same data directory can say who holds it.
    role: dict[str, Any] = field(default_factory=dict)
    resolver: Resolver | None = None

    @classmethod
    def create(cls, settings: Settings, create_key: bool = True) -> Runtime:
        """`create_key=False` (CLI commands that only use an existing installation): create
        neither the data directory nor a key file."""
        if create_key:
            # The data directory holds the key file and the database: owner-only.
            settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        secret = settings.secret_key.get_secret_value() if settings.secret_key else None
        # A configured key file is never created here: every process must share the same one.
        create = create_key and settings.secret_key_file is None
        keys = load_keys(secret, settings.key_file, create=create)
        vault = Vault(keys, key_file=None if secret else settings.key_file)
        db = Database(settings.resolved_database_url)
        # Other processes may share this database: changes are announced to them too.
        bus: ConfigBus
        if db.is_sqlite:
            from eventrelay.bus.sqlite import SqliteBus

            bus = SqliteBus(db)
        else:
            from eventrelay.bus.postgres import PostgresBus

            # The listening connection names the newest key's fingerprint, so `secrets rotate`
            # can tell whether every running process already has the new key.
            bus = PostgresBus(settings.postgres_dsn, f"{KEY_ANNOUNCEMENT}{vault.fingerprint}")
        return cls(settings=settings, db=db, vault=vault, bus=bus)

    async def start(
        self, ingest: bool = True, consume: bool = True, consume_if_free: bool = False
    ) -> bool:
        """Open the data plane's infrastructure: queue, metrics, routing directory (`ingest`).

        `consume`: open the queue as its consumer (this process will deliver).
        `consume_if_free`: consume only if this process can take the embedded queue's consumer
        lock (one of several `serve --processes` siblings does), else only publish.
        Returns whether this process consumes, i.e. should start the delivery plane.
        """
        from eventrelay.queue.sqlite import QueueLocked
        from eventrelay.routing.directory import Directory
        from eventrelay.rules.limits import set_limits
        from eventrelay.store.metrics import MetricsRecorder

        settings = self.settings
        set_limits(settings.rules_js_timeout_ms / 1000, settings.rules_js_memory_mb * 1024 * 1024)

        if self.db.is_sqlite:
            (self.settings.data_dir / KEY_FINGERPRINT_FILE).write_text(self.vault.fingerprint)
        await self.bus.start()
        self.queue = make_queue(self.settings, consumer=consume, holder=self.role)
        try:
            await self.queue.start()
        except QueueLocked:
            if not consume_if_free:
                raise
            consume = False  # a sibling process delivers; this one publishes
            self.queue = make_queue(self.settings, consumer=False)
            await self.queue.start()
        self.metrics = MetricsRecorder(self.db)
        await self.metrics.start()
        if ingest:
            self.directory = Directory(self.db, self.bus)
            await self.directory.start()
        if ingest or consume:
            # API processes show their events; delivering processes their outcomes (the tap
            # learns from the listeners' leases which sources are watched).
            self.tap = make_tap(self.settings)
            await self.tap.start()
        return consume

    async def close(self) -> None:
        """Stop in reverse order (the delivery plane is closed before): counters flush, the
        queue commits last."""
        if self.tap:
            await self.tap.close()
        if self.directory:
            await self.directory.close()
        if self.metrics:
            await self.metrics.close()
        if self.queue:
            await self.queue.close()
        await self.bus.close()
        await self.db.close()
