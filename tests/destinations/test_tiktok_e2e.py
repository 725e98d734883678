"""TikTok Events API end to end: /v1/track -> eventrelay -> a local stand-in of
business-api.tiktok.com. TikTok answers HTTP 200 and puts the result in the body's `code`."""

from __future__ import annotations

import hashlib

import orjson

from eventrelay.settings import Settings
from tests.support.sink import Received
from tests.support.vendor import build, purchase, tracks, vendor_run

CONFIG = {"pixel_id": "CABCDE1234567890", "access_token": "tt-secret-token"}
PURCHASE = purchase(
    page={"url": "https://shop.example.com/thanks?ttclid=TT-CLICK"},
    traits={"email": "Ada@Example.com", "phone": "+1 (650) 555-1234"},
)


def answer(code: int, message: str = "OK") -> bytes:
    return orjson.dumps({"code": code, "message": message, "request_id": "req-1", "data": {}})


async def test_purchase_arrives_in_the_documented_shape(settings: Settings) -> None:
    async with vendor_run(settings, "tiktok", CONFIG) as run:
        run.vendor.body = answer(0)
        await run.send(**PURCHASE)
        await run.vendor.wait_for(lambda: len(run.vendor.requests) == 1)
        request = run.vendor.requests[0]
        assert request.method == "POST"
        assert request.path == "/open_api/v1.3/event/track/"
        assert request.query == {}
        assert request.headers["Access-Token"] == "tt-secret-token"
        assert request.headers["Content-Type"] == "application/json"
        body = request.json()
        assert body["event_source"] == "web"
        assert body["event_source_id"] == "CABCDE1234567890"
        assert "test_event_code" not in body
        [event] = body["data"]
        assert event["event"] == "Purchase"
        assert len(event["event_id"]) == 36  # the messageId eventrelay assigned
        assert isinstance(event["event_time"], int)
        assert event["user"] == {
            "email": hashlib.sha256(b"ada@example.com").hexdigest(),
            "phone": hashlib.sha256(b"+16505551234").hexdigest(),
            "external_id": hashlib.sha256(b"u-1").hexdigest(),
            "ttclid": "TT-CLICK",
            "ip": "203.0.113.5",
            "user_agent": "UA",
        }
        assert event["page"] == {"url": "https://shop.example.com/thanks?ttclid=TT-CLICK"}
        assert event["properties"] == {"currency": "USD", "value": 10.5, "order_id": "O-1"}
        assert event["limited_data_use"] is False
        await run.wait_metrics(successes=1)


async def test_rate_limit_and_internal_error_codes_are_retried(settings: Settings) -> None:
    async with vendor_run(settings, "tiktok", CONFIG) as run:
        answers = [answer(40100, "Too many requests"), answer(40700, "Internal error")]

        def respond(_r: Received) -> tuple[int, dict[str, str], bytes]:
            return (
                200,
                {"Content-Type": "application/json"},
                answers.pop(0) if answers else answer(0),
            )

        run.vendor.responder = respond
        await run.send(**PURCHASE)
        await run.vendor.wait_for(lambda: len(run.vendor.requests) == 3)
        ids = {r.json()["data"][0]["event_id"] for r in run.vendor.requests}
        assert len(ids) == 1  # the dedup id is stable across retries
        await run.wait_metrics(successes=1)


async def test_auth_code_in_a_200_puts_the_integration_in_error(settings: Settings) -> None:
    async with vendor_run(settings, "tiktok", CONFIG) as run:
        run.vendor.body = answer(40001, "No permission to operate pixel code")
        await run.send(**PURCHASE)
        current = await run.wait_status("error")
        assert "tiktok_40001" in current["last_error_message"]
        assert "No permission to operate pixel code" in current["last_error_message"]
        assert "tt-secret-token" not in current["last_error_message"]


async def test_one_bad_event_does_not_block_the_batch(settings: Settings) -> None:
    async with vendor_run(settings, "tiktok", CONFIG) as run:

        def respond(r: Received) -> tuple[int, dict[str, str], bytes]:
            names = [e["event"] for e in r.json()["data"]]
            if "Broken" in names:
                return 200, {}, answer(40000, "Invalid value for event_time")
            return 200, {}, answer(0)

        run.vendor.responder = respond
        await run.send_batch(tracks("Good One", "Broken", "Good Two", userAgent="UA"))
        m = await run.wait_metrics(successes=2, discarded=1)
        assert m["discarded.tiktok_40000"] == 1


async def test_admin_test_call_sends_the_test_event_code(settings: Settings) -> None:
    config = {**CONFIG, "test_event_code": "TEST12345"}
    async with vendor_run(settings, "tiktok", config) as run:
        run.vendor.body = answer(0)
        r = await run.admin_test()
        assert r.status_code == 200, r.text
        assert r.json()["ok"] is True
        assert r.json()["results"][0]["request"]["headers"]["Access-Token"] == "***"
        [sent] = run.vendor.requests
        assert sent.json()["test_event_code"] == "TEST12345"
        assert sent.json()["data"][0]["event"] == "Purchase"


def test_batches_are_cut_at_1000_events() -> None:
    events = [
        {"type": "track", "event": "Demo", "userId": "u", "messageId": f"m-{i}"}
        for i in range(1001)
    ]
    built = build("tiktok", CONFIG, events)
    assert [len(r.event_indices) for r in built.requests] == [1000, 1]
    assert built.requests[1].event_indices == (1000,)
    assert orjson.loads(built.requests[1].body or b"")["data"][0]["event_id"] == "m-1000"
