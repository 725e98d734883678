"""A destination type whose delivery is not built yet ("planned" in the catalog): every type
eventrelay ships delivers, so the paths for one that does not are tested with this one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

from eventrelay.destinations import registry
from eventrelay.destinations.webhook import Webhook

TYPE = "planned_test"


class PlannedWebhook(Webhook):
    type = TYPE
    title = "Planned destination (tests)"
    delivers: ClassVar[bool] = False


@contextmanager
def planned_destination() -> Iterator[str]:
    """Registers the destination for the block; yields its type."""
    registry.DESTINATIONS[TYPE] = PlannedWebhook()
    try:
        yield TYPE
    finally:
        registry.DESTINATIONS.pop(TYPE, None)
