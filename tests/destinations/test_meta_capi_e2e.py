"""Meta CAPI end to end: /v1/track -> eventrelay -> a local stand-in of graph.facebook.com."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from eventrelay.settings import Settings
from tests.support.sink import Received
from tests.support.vendor import purchase, tracks, vendor_run

CONFIG = {"pixel_id": "1234567890", "access_token": "EAA-secret-token"}
PURCHASE = purchase()


def graph_error(code: int, message: str, transient: bool = False) -> bytes:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if transient:
        error["is_transient"] = True
    return orjson.dumps({"error": error})


async def test_purchase_arrives_in_the_documented_shape(settings: Settings) -> None:
    async with vendor_run(settings, "meta_capi", CONFIG) as run:
        await run.send(**PURCHASE)
        await run.vendor.wait_for(lambda: len(run.vendor.requests) == 1)
        request = run.vendor.requests[0]
        assert request.method == "POST"
        assert request.path == "/v26.0/1234567890/events"
        assert request.headers["Authorization"] == "Bearer EAA-secret-token"
        [event] = request.json()["data"]
        assert event["event_name"] == "Purchase"
        assert event["action_source"] == "website"
        assert len(event["event_id"]) == 36  # the messageId eventrelay assigned
        assert event["user_data"]["em"] == [hashlib.sha256(b"ada@example.com").hexdigest()]
        assert event["custom_data"] == {"currency": "USD", "value": 10.5, "order_id": "O-1"}
        await run.wait_metrics(successes=1)


async def test_transient_errors_are_retried(settings: Settings) -> None:
    async with vendor_run(settings, "meta_capi", CONFIG) as run:
        answers = [(400, graph_error(2, "Service temporarily unavailable", transient=True))]

        def respond(_r: Received) -> tuple[int, dict[str, str], bytes] | None:
            if answers:
                status, body = answers.pop(0)
                return status, {"Content-Type": "application/json"}, body
            return 200, {}, b'{"events_received": 1}'

        run.vendor.responder = respond
        await run.send(**PURCHASE)
        await run.vendor.wait_for(lambda: len(run.vendor.requests) == 2)
        ids = {r.json()["data"][0]["event_id"] for r in run.vendor.requests}
        assert len(ids) == 1  # the dedup id is stable across retries
        await run.wait_metrics(successes=1)


async def test_expired_token_puts_the_integration_in_error(settings: Settings) -> None:
    async with vendor_run(settings, "meta_capi", CONFIG) as run:
        run.vendor.responder = lambda _r: (
            400,
            {},
            graph_error(190, "Error validating access token: EAA-secret-token has expired"),
        )
        await run.send(**PURCHASE)
        current = await run.wait_status("error")
        assert "Error validating access token" in current["last_error_message"]
        assert "EAA-secret-token" not in current["last_error_message"]


async def test_one_bad_event_does_not_block_the_batch(settings: Settings) -> None:
    async with vendor_run(settings, "meta_capi", CONFIG) as run:

        def respond(r: Received) -> tuple[int, dict[str, str], bytes]:
            names = [e["event_name"] for e in r.json()["data"]]
            if "Broken" in names:
                return 400, {}, graph_error(100, "Invalid parameter")
            return 200, {}, orjson.dumps({"events_received": len(names)})

        run.vendor.responder = respond
        await run.send_batch(tracks("Good One", "Broken", "Good Two", userAgent="UA"))
        m = await run.wait_metrics(successes=2, discarded=1)
        assert m["discarded.meta_100"] == 1
        delivered = {
            e["event_name"]
            for r in run.vendor.requests
            if r.json()["data"] and "Broken" not in [x["event_name"] for x in r.json()["data"]]
            for e in r.json()["data"]
        }
        assert delivered == {"Good One", "Good Two"}
