"""A destination with a bug, for tests of what delivery does with unexpected errors: it is the
webhook, except that it reads a field the vendor never sends (a KeyError on every answer)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import orjson

from eventrelay.destinations import registry
from eventrelay.destinations.base import HttpRequest, HttpResponse, Outcome
from eventrelay.destinations.classify import classify_status
from eventrelay.destinations.webhook import Webhook

TYPE = "fragile_test"


class FragileWebhook(Webhook):
    type = TYPE
    title = "Fragile webhook (tests)"

    def classify(self, request: HttpRequest, response: HttpResponse) -> list[Outcome]:
        orjson.loads(response.body)["status"]  # the bug: no such field in the answer
        return [classify_status(response)]


@contextmanager
def fragile_destination() -> Iterator[str]:
    """Registers the destination for the block; yields its type."""
    registry.DESTINATIONS[TYPE] = FragileWebhook()
    try:
        yield TYPE
    finally:
        registry.DESTINATIONS.pop(TYPE, None)
