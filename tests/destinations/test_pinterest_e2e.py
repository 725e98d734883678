"""Pinterest end to end: /v1/track -> eventrelay -> a local stand-in of api.pinterest.com."""

from __future__ import annotations

import hashlib

import orjson

from eventrelay.settings import Settings
from tests.support.sink import Received
from tests.support.vendor import purchase, tracks, vendor_run

CONFIG = {"ad_account_id": "549755885175", "access_token": "pina-secret-token"}
PURCHASE = purchase()
JSON = {"Content-Type": "application/json"}


def processed(statuses: list[str]) -> bytes:
    return orjson.dumps(
        {
            "num_events_received": len(statuses),
            "num_events_processed": statuses.count("processed"),
            "events": [
                {
                    "status": s,
                    "error_message": "Invalid event" if s == "failed" else "",
                    "warning_message": "",
                }
                for s in statuses
            ],
        }
    )


def error(code: int, message: str) -> bytes:
    return orjson.dumps({"code": code, "message": message})


async def test_purchase_arrives_in_the_documented_shape(settings: Settings) -> None:
    async with vendor_run(settings, "pinterest", CONFIG) as run:
        run.vendor.responder = lambda _r: (200, JSON, processed(["processed"]))
        await run.send(**PURCHASE)
        await run.vendor.wait_for(lambda: len(run.vendor.requests) == 1, timeout=30)
        request = run.vendor.requests[0]
        assert request.method == "POST"
        assert request.path == "/v5/ad_accounts/549755885175/events"
        assert request.query == {}  # not a test call
        assert request.headers["Authorization"] == "Bearer pina-secret-token"
        [event] = request.json()["data"]
        assert event["event_name"] == "checkout"
        assert event["action_source"] == "web"
        assert isinstance(event["event_time"], int)
        assert len(event["event_id"]) == 36  # the messageId eventrelay assigned
        assert event["opt_out"] is False
        assert event["user_data"] == {
            "em": [hashlib.sha256(b"ada@example.com").hexdigest()],
            "external_id": [hashlib.sha256(b"u-1").hexdigest()],
            "client_ip_address": "203.0.113.5",
            "client_user_agent": "UA",
        }
        # value is a string in Pinterest's schema.
        assert event["custom_data"] == {"currency": "USD", "value": "10.5", "order_id": "O-1"}
        await run.wait_metrics(successes=1, timeout=30)


async def test_transient_errors_are_retried_with_the_same_event_id(settings: Settings) -> None:
    async with vendor_run(settings, "pinterest", CONFIG) as run:
        answers = [
            (503, error(4197, "The endpoint has been ramped down")),
            (429, error(8, "You have exceeded your rate limit")),
        ]

        def respond(_r: Received) -> tuple[int, dict[str, str], bytes]:
            if answers:
                status, body = answers.pop(0)
                return status, JSON, body
            return 200, JSON, processed(["processed"])

        run.vendor.responder = respond
        await run.send(**PURCHASE)
        await run.vendor.wait_for(lambda: len(run.vendor.requests) == 3, timeout=30)
        ids = {r.json()["data"][0]["event_id"] for r in run.vendor.requests}
        assert len(ids) == 1  # the dedup id is stable across retries
        await run.wait_metrics(successes=1, timeout=30)


async def test_refused_token_puts_the_integration_in_error(settings: Settings) -> None:
    async with vendor_run(settings, "pinterest", CONFIG) as run:
        run.vendor.responder = lambda _r: (401, JSON, error(2, "Authentication failed."))
        await run.send(**PURCHASE)
        current = await run.wait_status("error", timeout=30)
        assert "Authentication failed" in current["last_error_message"]
        assert "pina-secret-token" not in current["last_error_message"]


async def test_a_failed_event_is_dropped_and_the_others_delivered(settings: Settings) -> None:
    async with vendor_run(settings, "pinterest", CONFIG) as run:

        def respond(r: Received) -> tuple[int, dict[str, str], bytes]:
            names = [e["event_name"] for e in r.json()["data"]]
            return 200, JSON, processed(["failed" if n == "signup" else "processed" for n in names])

        run.vendor.responder = respond
        names = ("Product Added", "Signed Up", "Product Viewed")
        await run.send_batch(tracks(*names, userAgent="UA", ip="203.0.113.5"))
        m = await run.wait_metrics(successes=2, discarded=1, timeout=30)
        assert m["discarded.pinterest_event_failed"] == 1
        sent = [e["event_name"] for r in run.vendor.requests for e in r.json()["data"]]
        assert sorted(sent) == ["add_to_cart", "signup", "view_content"]  # each sent once
        [failure] = await run.pipe.failures(run.integration["id"])
        assert "Invalid event" in str(failure)


async def test_admin_test_call_uses_test_mode(settings: Settings) -> None:
    async with vendor_run(settings, "pinterest", CONFIG) as run:
        run.vendor.responder = lambda _r: (200, JSON, processed(["processed"]))
        r = await run.admin_test()
        assert r.status_code == 200, r.text
        assert r.json()["ok"] is True
        [sent] = run.vendor.requests
        assert sent.path == "/v5/ad_accounts/549755885175/events"
        assert sent.query == {"test": "true"}
        assert sent.json()["data"][0]["event_name"] == "checkout"
