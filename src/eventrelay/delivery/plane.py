"""The delivery plane of one process: failure log, HTTP sender and the supervisor that runs one
worker per active integration. Started by `eventrelay serve` (unless --no-workers) and by
`eventrelay worker`, after the runtime's queue and metrics are open; stopped before them."""

from __future__ import annotations

from eventrelay.delivery.failures import FailureLog
from eventrelay.delivery.policy import RetryPolicy
from eventrelay.delivery.sender import HttpSender
from eventrelay.delivery.services import Services
from eventrelay.delivery.supervisor import DeliverySupervisor
from eventrelay.runtime import Runtime


class DeliveryPlane:
    def __init__(self, rt: Runtime) -> None:
        assert rt.queue is not None and rt.metrics is not None, "start the runtime first"
        s = rt.settings
        self.failures = FailureLog(rt.db)
        self.sender = HttpSender(s.http_timeout_seconds, s.allow_private_targets, rt.resolver)
        services = Services(
            queue=rt.queue,
            sender=self.sender,
            metrics=rt.metrics,
            failures=self.failures,
            policy=RetryPolicy(s.retry_base_seconds, s.retry_cap_seconds, s.max_event_age_seconds),
            concurrency=s.delivery_concurrency,
            base_urls=dict(s.vendor_base_urls),
            tap=rt.tap,
        )
        self.supervisor = DeliverySupervisor(rt, services, self.failures)

    async def start(self) -> None:
        await self.failures.start()
        await self.sender.start()
        await self.supervisor.start()

    async def close(self) -> None:
        """Workers drain first; then the sender closes and the failure log flushes."""
        await self.supervisor.close()
        await self.sender.close()
        await self.failures.close()
