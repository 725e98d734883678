"""When retries happen and when an integration gives up: a vendor's Retry-After is capped and
never expires events (issue 9.5); the error state comes when the failure window ends, not at
the next retry (issue 10.11). Both shapes."""

from __future__ import annotations

from typing import Any

import pytest

from eventrelay.settings import Settings
from tests.support.pipeline import Pipeline, running_pipeline
from tests.support.sink import Sink


async def _hook(pipe: Pipeline, sink: Sink) -> tuple[dict[str, Any], dict[str, Any]]:
    src = await pipe.api.make_source()
    integration = await pipe.api.make_integration(
        src["id"], type="webhook", config={"url": sink.url + "/hook"}
    )
    return src, integration


def _first_answer(sink: Sink, status: int, retry_after: str) -> Any:
    """The first request gets `status` with a Retry-After; the others the default (200)."""
    return lambda r: (
        (status, {"Retry-After": retry_after}, b"later") if len(sink.requests) == 1 else None
    )


@pytest.mark.parametrize(
    ("overrides", "retry_after"),
    [
        ({"retry_cap_seconds": 1.0}, "999999"),  # capped at 1 s
        ({"retry_cap_seconds": 600.0, "max_event_age_seconds": 3.0}, "600"),  # past max age
    ],
    ids=["capped", "clamped-to-max-age"],
)
async def test_a_huge_retry_after_neither_parks_nor_expires_events(
    settings: Settings, sink: Sink, overrides: dict[str, float], retry_after: str
) -> None:
    sink.responder = _first_answer(sink, 429, retry_after)
    async with running_pipeline(settings, **overrides) as pipe:
        src, integration = await _hook(pipe, sink)
        await pipe.track(src["write_key"])
        await sink.wait_for(lambda: len(sink.requests) == 2, timeout=10)

        async def delivered() -> dict[str, Any] | None:
            m = await pipe.metrics(integration["id"])
            return m if m["successes"] == 1 else None

        m = await pipe.eventually(delivered)
        assert m["expired"] == 0
        assert m["retried"] == 1


async def test_the_error_state_comes_when_the_window_ends(settings: Settings, sink: Sink) -> None:
    """The vendor asks for a 30 s pause: the next attempt (and, before, the window check) would
    come 30 s later; the error state must not wait for it."""
    sink.default = 503
    sink.headers = {"Retry-After": "30"}
    async with running_pipeline(settings, error_window_seconds=1.5, retry_cap_seconds=60.0) as pipe:
        src, integration = await _hook(pipe, sink)
        await pipe.track(src["write_key"])
        await sink.wait_for(lambda: len(sink.requests) == 1)

        async def in_error() -> dict[str, Any] | None:
            current = await pipe.integration(integration["id"])
            return current if current["status"] == "error" else None

        current = await pipe.eventually(in_error, timeout=8)
        assert "no successful delivery for 1.5 s" in current["last_error_message"]
        assert "http_503" in current["last_error_message"]
        assert len(sink.requests) == 1  # it did not take another attempt to notice
