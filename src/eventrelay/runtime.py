"""The runtime: the long-lived pieces one process holds (database, vault, bus, queue, directory,
metrics, delivery), built from Settings. The HTTP app, the workers and the CLI start from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from eventrelay.bus import ConfigBus
from eventrelay.settings import Settings
from eventrelay.store.db import Database
from eventrelay.store.vault import Vault, load_keys

if TYPE_CHECKING:
    from eventrelay.delivery.failures import FailureLog
    from eventrelay.delivery.sender import HttpSender
    from eventrelay.delivery.supervisor import DeliverySupervisor
    from eventrelay.queue.base import Queue
    from eventrelay.routing.directory import Directory
    from eventrelay.store.metrics import MetricsRecorder


def make_queue(settings: Settings, consumer: bool = True) -> Queue:
    url = settings.queue_url
    if url and url.startswith(("nats://", "tls://")):
        from eventrelay.queue.nats import NatsQueue

        return NatsQueue(settings)
    from eventrelay.queue.sqlite import SqliteQueue

    return SqliteQueue(settings.queue_path, synchronous=settings.queue_sync, consumer=consumer)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    vault: Vault
    bus: ConfigBus
    queue: Queue | None = None
    directory: Directory | None = None
    metrics: MetricsRecorder | None = None
    failures: FailureLog | None = None
    sender: HttpSender | None = None
    supervisor: DeliverySupervisor | None = None

    @classmethod
    def create(cls, settings: Settings, create_key: bool = True) -> Runtime:
        # The data directory holds the key file and the database: owner-only.
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        secret = settings.secret_key.get_secret_value() if settings.secret_key else None
        vault = Vault(load_keys(secret, settings.key_file, create=create_key))
        db = Database(settings.resolved_database_url)
        # Other processes may share this database: changes are announced to them too.
        bus: ConfigBus
        if db.is_sqlite:
            from eventrelay.bus_sqlite import SqliteBus

            bus = SqliteBus(db)
        else:
            from eventrelay.bus_postgres import PostgresBus

            bus = PostgresBus(settings.postgres_dsn)
        return cls(settings=settings, db=db, vault=vault, bus=bus)

    async def start(
        self, ingest: bool = True, workers: bool = True, workers_if_free: bool = False
    ) -> None:
        """Open the data plane: queue, metrics, routing directory, delivery workers.

        `workers_if_free`: deliver only if this process can take the embedded queue's consumer
        lock (one of several `serve --processes` siblings does), else serve the API alone.
        """
        from eventrelay.delivery.failures import FailureLog
        from eventrelay.delivery.policy import RetryPolicy
        from eventrelay.delivery.sender import HttpSender
        from eventrelay.delivery.supervisor import DeliverySupervisor
        from eventrelay.delivery.worker import Services
        from eventrelay.routing.directory import Directory
        from eventrelay.store.metrics import MetricsRecorder

        s = self.settings
        await self.bus.start()
        from eventrelay.queue.sqlite import QueueLocked

        self.queue = make_queue(s, consumer=workers)
        try:
            await self.queue.start()
        except QueueLocked:
            if not workers_if_free:
                raise
            workers = False  # a sibling process delivers; this one publishes
            self.queue = make_queue(s, consumer=False)
            await self.queue.start()
        self.metrics = MetricsRecorder(self.db)
        await self.metrics.start()
        if ingest:
            self.directory = Directory(self.db, self.bus)
            await self.directory.start()
        if workers:
            self.failures = FailureLog(self.db)
            await self.failures.start()
            self.sender = HttpSender(s.http_timeout_seconds, s.allow_private_targets)
            await self.sender.start()
            services = Services(
                queue=self.queue,
                sender=self.sender,
                metrics=self.metrics,
                failures=self.failures,
                policy=RetryPolicy(
                    s.retry_base_seconds, s.retry_cap_seconds, s.max_event_age_seconds
                ),
                concurrency=s.delivery_concurrency,
                base_urls=dict(s.vendor_base_urls),
            )
            self.supervisor = DeliverySupervisor(self, services, self.failures)
            await self.supervisor.start()

    async def close(self) -> None:
        """Stop in reverse order: workers drain, counters flush, the queue commits last."""
        if self.supervisor:
            await self.supervisor.close()
        if self.directory:
            await self.directory.close()
        if self.sender:
            await self.sender.close()
        if self.failures:
            await self.failures.close()
        if self.metrics:
            await self.metrics.close()
        if self.queue:
            await self.queue.close()
        await self.bus.close()
        await self.db.close()
