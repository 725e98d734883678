"""Issue 10.8: INFO log lines for every integration state change and every discard, expiry and
retry, with the integration's id, name and type, the reason and the vendor's status (secrets
redacted); repeated lines are rate-limited with a count of what was held back."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest

from eventrelay.delivery.journal import Journal, Subject
from eventrelay.delivery.sender import HttpSender, TransportError
from eventrelay.destinations.base import HttpRequest
from eventrelay.settings import Settings
from tests.support.pipeline import Pipeline, running_pipeline
from tests.support.sink import Sink

WHO = Subject("int_1", "Webhook Prod", "webhook")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def lines(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == message]


def test_repeated_outcome_lines_are_summarised(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="eventrelay.delivery")
    clock = Clock()
    journal = Journal(interval=60, clock=clock)
    journal.outcome(WHO, "retried", "http_503", 10, 503, "busy")
    for _ in range(5):
        clock.now += 1
        journal.outcome(WHO, "retried", "http_503", 2, 503, "busy")
    journal.outcome(WHO, "retried", "timeout", 1)  # another reason: its own line
    clock.now = 61
    journal.outcome(WHO, "retried", "http_503", 1, 503, "busy")
    retried = lines(caplog, "events retried")
    assert [(r.reason, r.events, r.held_back) for r in retried] == [  # type: ignore[attr-defined]
        ("http_503", 10, 0),
        ("timeout", 1, 0),
        ("http_503", 11, 5),  # this line and the five held back
    ]
    first = retried[0]
    assert first.integration_id == "int_1"  # type: ignore[attr-defined]
    assert first.integration_name == "Webhook Prod"  # type: ignore[attr-defined]
    assert first.integration_type == "webhook"  # type: ignore[attr-defined]
    assert first.vendor_status == 503  # type: ignore[attr-defined]


def test_held_back_lines_are_written_once_their_interval_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="eventrelay.delivery")
    clock = Clock()
    journal = Journal(interval=60, clock=clock)
    journal.outcome(WHO, "discarded", "http_400", 1, 400)
    clock.now = 5
    journal.outcome(WHO, "discarded", "http_400", 3, 400)
    journal.flush()
    assert len(lines(caplog, "events discarded")) == 1  # not yet
    clock.now = 70
    journal.flush()
    [_, summary] = lines(caplog, "events discarded")
    assert (summary.events, summary.held_back) == (3, 1)  # type: ignore[attr-defined]


async def _wait_for_line(
    pipe: Pipeline, caplog: pytest.LogCaptureFixture, message: str
) -> logging.LogRecord:
    async def found() -> logging.LogRecord | None:
        got = lines(caplog, message)
        return got[-1] if got else None

    record: logging.LogRecord = await pipe.eventually(found)
    return record


async def test_discards_and_state_changes_are_logged(
    settings: Settings, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="eventrelay.delivery")
    sink.default = 400
    sink.body = b'{"error":"bad field","echo":"k-SECRET-77"}'
    async with running_pipeline(settings) as pipe:
        src = await pipe.api.make_source()
        integration = await pipe.api.make_integration(
            src["id"],
            type="webhook",
            name="Webhook Prod",
            config={"url": sink.url + "/hook", "headers": {"X-Api-Key": "k-SECRET-77"}},
        )
        path = f"/v1/admin/integrations/{integration['id']}/status"
        await pipe.track(src["write_key"])
        discarded: Any = await _wait_for_line(pipe, caplog, "events discarded")
        assert discarded.integration_id == integration["id"]
        assert discarded.integration_name == "Webhook Prod"
        assert discarded.integration_type == "webhook"
        assert discarded.reason == "http_400"
        assert discarded.vendor_status == 400
        assert discarded.events == 1
        assert "bad field" in discarded.detail
        assert "k-SECRET-77" not in caplog.text

        assert (await pipe.api.post(path, json={"status": "paused"})).status_code == 200
        paused: Any = await _wait_for_line(pipe, caplog, "integration paused")
        assert (paused.status_old, paused.status_new) == ("active", "paused")
        assert paused.integration_name == "Webhook Prod"
        assert (await pipe.api.post(path, json={"status": "active"})).status_code == 200
        await _wait_for_line(pipe, caplog, "integration resumed")

        sink.default = 410  # the receiver asks for no more deliveries
        await pipe.track(src["write_key"])
        entered: Any = await _wait_for_line(pipe, caplog, "integration entered the error state")
        assert entered.integration_name == "Webhook Prod"
        assert entered.vendor_status == 410
        assert "http_410" in entered.reason
        sink.default = 200
        assert (await pipe.api.post(path, json={"status": "active"})).status_code == 200
        left: Any = await _wait_for_line(pipe, caplog, "integration left the error state")
        assert (left.status_old, left.status_new) == ("error", "active")
    assert "k-SECRET-77" not in caplog.text


async def no_such_name(host: str, port: int) -> list[str]:
    """A resolver for names that do not exist (nothing leaves the machine)."""
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.mark.parametrize("private", [True, False], ids=["plain", "guarded"])
async def test_a_name_that_does_not_resolve_is_a_dns_error(private: bool) -> None:
    sender = HttpSender(timeout=5, allow_private_targets=private, resolver=no_such_name)
    await sender.start()
    try:
        request = HttpRequest("POST", "http://hooks.example.invalid/x", {}, b"{}", (0,), True)
        with pytest.raises(TransportError) as info:
            await sender.send(request)
        assert info.value.reason == "dns_error"
        assert "invalid" not in info.value.message  # no URL or host in error texts
    finally:
        await sender.close()
