"""Snap Conversions API end to end: /v1/track -> eventrelay -> a local stand-in of
tr.snapchat.com. The token travels as the access_token query parameter."""

from __future__ import annotations

import hashlib

import orjson

from eventrelay.settings import Settings
from tests.support.sink import Received
from tests.support.vendor import build, purchase, vendor_run

PIXEL = "a1b2c3d4-0000-4e5f-8a9b-0123456789ab"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.snap-secret-token.sig"
CONFIG = {"pixel_id": PIXEL, "access_token": TOKEN}
VALID = orjson.dumps({"status": "VALID", "reason": "ok"})
PURCHASE = purchase(
    page={"url": "https://shop.example.com/thanks?ScCid=SC-1"},
    traits={"email": "Ada@Example.com", "phone": "+44 844 412 4653"},
)


async def test_purchase_arrives_in_the_documented_shape(settings: Settings) -> None:
    async with vendor_run(settings, "snapchat", CONFIG) as run:
        run.vendor.body = VALID
        await run.send(**PURCHASE)
        await run.vendor.wait_for(lambda: len(run.vendor.requests) == 1)
        request = run.vendor.requests[0]
        assert request.method == "POST"
        assert request.path == f"/v3/{PIXEL}/events"
        assert request.query == {"access_token": TOKEN}
        assert request.headers["Content-Type"] == "application/json"
        assert "Authorization" not in request.headers
        [event] = request.json()["data"]
        assert event["event_name"] == "PURCHASE"
        assert event["action_source"] == "WEB"
        assert event["event_source_url"] == "https://shop.example.com/thanks?ScCid=SC-1"
        assert len(event["event_id"]) == 36  # the messageId eventrelay assigned
        assert isinstance(event["event_time"], int)
        assert event["user_data"] == {
            "em": [hashlib.sha256(b"ada@example.com").hexdigest()],
            "ph": [hashlib.sha256(b"448444124653").hexdigest()],
            "external_id": [hashlib.sha256(b"u-1").hexdigest()],
            "client_ip_address": "203.0.113.5",
            "client_user_agent": "UA",
            "sc_click_id": "SC-1",
        }
        assert event["custom_data"] == {"currency": "USD", "value": 10.5, "order_id": "O-1"}
        await run.wait_metrics(successes=1)


async def test_rate_limit_and_server_errors_are_retried(settings: Settings) -> None:
    async with vendor_run(settings, "snapchat", CONFIG) as run:
        run.vendor.statuses = [429, 503]
        run.vendor.body = VALID
        await run.send(**PURCHASE)
        await run.vendor.wait_for(lambda: len(run.vendor.requests) == 3)
        ids = {r.json()["data"][0]["event_id"] for r in run.vendor.requests}
        assert len(ids) == 1  # the dedup id is stable across retries
        await run.wait_metrics(successes=1)
        failures = await run.pipe.failures(run.integration["id"])
        assert failures
        assert "snap-secret-token" not in orjson.dumps(failures).decode()


async def test_refused_token_puts_the_integration_in_error(settings: Settings) -> None:
    async with vendor_run(settings, "snapchat", CONFIG) as run:
        run.vendor.default = 401
        run.vendor.body = orjson.dumps({"status": "INVALID", "reason": "Unauthorized token"})
        await run.send(**PURCHASE)
        current = await run.wait_status("error")
        assert "Unauthorized token" in current["last_error_message"]
        assert "snap-secret-token" not in current["last_error_message"]


async def test_the_event_snap_names_is_dropped_the_others_delivered(settings: Settings) -> None:
    async with vendor_run(settings, "snapchat", CONFIG) as run:

        def respond(r: Received) -> tuple[int, dict[str, str], bytes]:
            orders = [e.get("custom_data", {}).get("order_id") for e in r.json()["data"]]
            if "BAD" in orders:
                error = {
                    "status": "INVALID",
                    "event": orders.index("BAD"),
                    "errors": {"codes": ["INVALID_VALUE"], "error_msgs": ["bad value"]},
                }
                return 400, {}, orjson.dumps(error)
            return 200, {}, VALID

        run.vendor.responder = respond
        batch = [
            {**PURCHASE, "type": "track", "properties": {"order_id": order}}
            for order in ("O-1", "BAD", "O-2")
        ]
        await run.send_batch(batch)
        m = await run.wait_metrics(successes=2, discarded=1)
        assert m["discarded.snap_invalid"] == 1


async def test_admin_test_call_uses_the_validate_endpoint(settings: Settings) -> None:
    async with vendor_run(settings, "snapchat", CONFIG) as run:
        run.vendor.body = orjson.dumps(
            {
                "status": "VALID",
                "test_event": True,
                "event_logs": [{"event": 0, "status": "VALID", "warnings": []}],
            }
        )
        r = await run.admin_test()
        assert r.status_code == 200, r.text
        assert r.json()["ok"] is True
        assert "snap-secret-token" not in r.text
        [sent] = run.vendor.requests
        assert sent.path == f"/v3/{PIXEL}/events/validate"
        assert sent.query == {"access_token": TOKEN}
        assert sent.json()["data"][0]["event_name"] == "PURCHASE"


async def test_event_mapping_only_takes_snap_event_names(settings: Settings) -> None:
    async with vendor_run(settings, "snapchat", CONFIG) as run:
        api = run.pipe.api
        bad = await run.create_integration(
            {**CONFIG, "event_mapping": {"Demo Booked": "DEMO_BOOKED"}}
        )
        assert bad.status_code == 422
        assert bad.json()["error"]["details"][0]["field"] == "config.event_mapping.Demo Booked"
        good = {**CONFIG, "event_mapping": {"Demo Booked": "CUSTOM_EVENT_1"}}
        await api.make_integration(run.source["id"], type="snapchat", config=good)


def test_batches_are_cut_at_2000_events() -> None:
    events = [{**PURCHASE, "type": "track", "messageId": f"m-{i}"} for i in range(2001)]
    built = build("snapchat", CONFIG, events)
    assert [len(r.event_indices) for r in built.requests] == [2000, 1]
    assert built.requests[1].event_indices == (2000,)
    assert orjson.loads(built.requests[1].body or b"")["data"][0]["event_id"] == "m-2000"
