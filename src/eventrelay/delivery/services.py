"""What a delivery worker is given: the integration as it delivers it (`Snapshot`) and the
process's shared services (queue, sender, metrics, failure log, policy, journal)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eventrelay.delivery.failures import FailureLog
from eventrelay.delivery.journal import Journal, Subject
from eventrelay.delivery.policy import RetryPolicy
from eventrelay.delivery.sender import HttpSender
from eventrelay.destinations.base import BuildContext, Destination, VendorSettings, build_context
from eventrelay.queue.base import Queue
from eventrelay.rules import CompiledRules
from eventrelay.store.metrics import MetricsRecorder

if TYPE_CHECKING:
    from eventrelay.routing.tap import Tap


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An integration as one worker delivers it (config decrypted)."""

    id: str
    org_id: str
    type: str
    name: str
    destination: Destination
    settings: VendorSettings
    consent_categories: tuple[str, ...]
    consent_default: str
    secrets: tuple[str, ...]
    version: tuple[object, ...]
    # Routing rules (trigger, filters, transformation), applied after the worker reads an
    # event and before build()/the load buffer; None: every event goes on.
    rules: CompiledRules | None = None
    # The log it reads (its source's) and from when: its creation (epoch seconds).
    source_id: str = ""
    since: float | None = None
    # Keys of an event's `integrations` object that address it (routing/selection.py).
    select_keys: tuple[str, ...] = ()

    @property
    def subject(self) -> Subject:
        return Subject(self.id, self.name, self.type)


@dataclass(slots=True)
class Services:
    queue: Queue
    sender: HttpSender
    metrics: MetricsRecorder
    failures: FailureLog
    policy: RetryPolicy
    concurrency: int
    # Operator overrides of vendor endpoints: {"<type>": base URL, "<type>.<name>": other}.
    base_urls: dict[str, str] = field(default_factory=dict)
    journal: Journal = field(default_factory=Journal)
    tap: Tap | None = None  # the live view: outcomes of watched sources' events

    def context_for(self, type_: str, **kwargs: Any) -> BuildContext:
        return build_context(type_, self.base_urls, **kwargs)
