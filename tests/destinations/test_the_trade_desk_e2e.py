"""The Trade Desk end to end: /v1/track -> eventrelay -> a local stand-in of insight.adsrvr.org."""

from __future__ import annotations

from eventrelay.settings import Settings
from tests.support.sink import Received
from tests.support.vendor import purchase, vendor_run

CONFIG = {
    "advertiser_id": "adv123",
    "tracking_tag_id": "trk456",
    "auth_token": "ttd-secret-token",
}
PURCHASE = purchase(
    {
        "tdid": "tdid-0001",
        "products": [{"product_id": "SKU-1", "name": "Mug", "price": 5.25, "quantity": 2}],
    },
    page={"url": "https://shop.example.com/thanks"},
)


async def test_purchase_arrives_in_the_documented_shape(settings: Settings) -> None:
    async with vendor_run(settings, "the_trade_desk", CONFIG) as run:
        await run.send(**PURCHASE)
        await run.vendor.wait_for(lambda: len(run.vendor.requests) == 1, timeout=30)
        request = run.vendor.requests[0]
        assert request.method == "POST"
        assert request.path == "/track/realtimeconversion"
        assert request.query == {}
        assert request.headers["Content-Type"] == "application/json"
        # The real-time endpoint takes no auth header: the stored token is never sent.
        assert "Authorization" not in request.headers
        assert "TTD-Auth" not in request.headers
        assert b"ttd-secret-token" not in request.body
        assert request.json() == {
            "data": [
                {
                    "tracker_id": "trk456",
                    "adv": "adv123",
                    "event_name": "purchase",
                    "value": "10.5",
                    "currency": "USD",
                    "order_id": "O-1",
                    "items": [{"item_code": "SKU-1", "name": "Mug", "qty": "2", "price": "5.25"}],
                    "adid": "tdid-0001",
                    "adid_type": "TDID",
                    "client_ip": "203.0.113.5",
                    "referrer_url": "https://shop.example.com/thanks",
                }
            ]
        }
        await run.wait_metrics(successes=1, timeout=30)


async def test_transient_errors_are_retried(settings: Settings) -> None:
    async with vendor_run(settings, "the_trade_desk", CONFIG) as run:
        statuses = [503, 429]

        def respond(_r: Received) -> tuple[int, dict[str, str], bytes]:
            return (statuses.pop(0) if statuses else 200), {}, b""

        run.vendor.responder = respond
        await run.send(**PURCHASE)
        await run.vendor.wait_for(lambda: len(run.vendor.requests) == 3, timeout=30)
        orders = {r.json()["data"][0]["order_id"] for r in run.vendor.requests}
        assert orders == {"O-1"}  # the dedup key is the same on every attempt
        await run.wait_metrics(successes=1, timeout=30)


async def test_refusal_puts_the_integration_in_error(settings: Settings) -> None:
    async with vendor_run(settings, "the_trade_desk", CONFIG) as run:
        run.vendor.responder = lambda _r: (403, {}, b"Forbidden: unknown advertiser")
        await run.send(**PURCHASE)
        current = await run.wait_status("error", timeout=30)
        assert "unknown advertiser" in current["last_error_message"]


async def test_bad_request_is_discarded(settings: Settings) -> None:
    async with vendor_run(settings, "the_trade_desk", CONFIG) as run:
        run.vendor.responder = lambda _r: (400, {}, b"invalid tracker")
        await run.send(**PURCHASE)
        m = await run.wait_metrics(discarded=1, timeout=30)
        assert m["discarded.http_400"] == 1
        assert len(run.vendor.requests) == 1  # not retried


async def test_admin_test_call_sends_nothing(settings: Settings) -> None:
    async with vendor_run(settings, "the_trade_desk", CONFIG) as run:
        r = await run.admin_test()
        assert r.status_code == 200, r.text
        # No test mode at TTD: a call would record a real conversion, so none is made.
        assert r.json() == {
            "ok": False,
            "results": [],
            "skipped": [{"index": 0, "reason": "no_test_mode"}],
            "notes": [],
        }
        assert run.vendor.requests == []


async def test_event_without_identifier_is_counted_as_filtered(settings: Settings) -> None:
    """Issue 8: TTD requires adid + adid_type; an event with none is not sent and is counted as
    filtered (no_identifier), next to one that is delivered."""
    async with vendor_run(settings, "the_trade_desk", CONFIG) as run:
        await run.send(**purchase())  # an email, but no TDID/UID2/RampID/device id
        await run.send(**PURCHASE)
        await run.wait_metrics(successes=1, timeout=30, **{"filtered.no_identifier": 1})
        [request] = run.vendor.requests
        assert request.json()["data"][0]["adid_type"] == "TDID"
