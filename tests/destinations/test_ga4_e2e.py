"""GA4 end to end: /v1/track -> eventrelay -> a local stand-in of www.google-analytics.com."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from eventrelay.settings import Settings
from tests.support.sink import Received
from tests.support.vendor import vendor_run

CONFIG = {"measurement_id": "G-ABC123XYZ", "api_secret": "mp-secret-value"}
PURCHASE: dict[str, Any] = {
    "userId": "u-1",
    "anonymousId": "555.1700000000",
    "event": "Order Completed",
    "properties": {
        "order_id": "O-1",
        "revenue": 10.5,
        "currency": "USD",
        "products": [{"product_id": "SKU-1", "name": "Socks", "price": 10.5, "quantity": 1}],
    },
    "context": {
        "userAgent": "UA",
        "ip": "203.0.113.5",
        "traits": {"email": "Ada.Lovelace@GoogleMail.com"},
        "consent": {"categoryPreferences": {"Analytics": True, "Advertising": True}},
    },
}


async def test_purchase_arrives_in_the_documented_shape(settings: Settings) -> None:
    async with vendor_run(settings, "ga4", CONFIG) as run:
        run.vendor.default = 204
        run.vendor.body = b""
        await run.send(**PURCHASE)
        await run.vendor.wait_for(lambda: len(run.vendor.requests) == 1)
        request = run.vendor.requests[0]
        assert request.method == "POST"
        assert request.path == "/mp/collect"
        assert request.query == {"measurement_id": "G-ABC123XYZ", "api_secret": "mp-secret-value"}
        assert request.headers["Content-Type"] == "application/json"
        body = request.json()
        assert body["client_id"] == "555.1700000000"
        assert body["user_id"] == "u-1"
        assert body["consent"] == {"ad_user_data": "GRANTED", "ad_personalization": "GRANTED"}
        # Google's rule for googlemail.com: dots of the local part removed before hashing.
        expected = hashlib.sha256(b"adalovelace@googlemail.com").hexdigest()
        assert body["user_data"] == {"sha256_email_address": [expected]}
        [event] = body["events"]
        assert event["name"] == "purchase"
        assert event["params"] == {
            "currency": "USD",
            "value": 10.5,
            "transaction_id": "O-1",
            "items": [{"item_id": "SKU-1", "item_name": "Socks", "price": 10.5, "quantity": 1}],
        }
        assert body["timestamp_micros"] == event["timestamp_micros"] > 1_700_000_000_000_000
        await run.wait_metrics(successes=1)


async def test_one_request_per_client(settings: Settings) -> None:
    async with vendor_run(settings, "ga4", CONFIG) as run:
        batch = [
            {"type": "track", "anonymousId": client, "event": name}
            for client, name in (("a", "Trial Started"), ("b", "Trial Started"), ("a", "Signed In"))
        ]
        await run.send_batch(batch)
        await run.wait_metrics(successes=3)
        by_client: dict[str, list[str]] = {}
        for request in run.vendor.requests:
            body = request.json()
            by_client.setdefault(body["client_id"], []).extend(e["name"] for e in body["events"])
        # Batches may be cut anywhere, so compare each client's events without order.
        assert {k: sorted(v) for k, v in by_client.items()} == {
            "a": ["login", "trial_started"],
            "b": ["trial_started"],
        }


async def test_transient_errors_are_retried(settings: Settings) -> None:
    async with vendor_run(settings, "ga4", CONFIG) as run:
        run.vendor.statuses = [500, 503]
        await run.send(**PURCHASE)
        await run.vendor.wait_for(lambda: len(run.vendor.requests) == 3, timeout=20)
        ids = {r.json()["events"][0]["params"]["transaction_id"] for r in run.vendor.requests}
        assert ids == {"O-1"}  # the purchase dedup key is stable across retries
        await run.wait_metrics(successes=1)


async def test_refused_credentials_put_the_integration_in_error(settings: Settings) -> None:
    async with vendor_run(settings, "ga4", CONFIG) as run:
        run.vendor.default = 403
        run.vendor.body = b"api_secret mp-secret-value is not valid for this stream"
        await run.send(**PURCHASE)
        current = await run.wait_status("error")
        assert "not valid for this stream" in current["last_error_message"]
        assert "mp-secret-value" not in current["last_error_message"]


async def test_admin_test_call_uses_the_validation_server(settings: Settings) -> None:
    async with vendor_run(settings, "ga4", CONFIG) as run:
        path = f"/v1/admin/integrations/{run.integration['id']}/test"
        run.vendor.body = b'{"validationMessages": []}'
        r = await run.pipe.api.post(path)
        assert r.status_code == 200, r.text
        assert r.json()["ok"] is True
        [sent] = run.vendor.requests
        assert sent.path == "/debug/mp/collect"
        assert sent.json()["events"][0]["name"] == "purchase"

        def invalid(_r: Received) -> tuple[int, dict[str, str], bytes]:
            message = {
                "fieldPath": "events",
                "description": "Event at index: [0] has invalid name [_x].",
                "validationCode": "NAME_INVALID",
            }
            return 200, {}, orjson.dumps({"validationMessages": [message]})

        run.vendor.responder = invalid
        r = await run.pipe.api.post(path)
        body = r.json()
        assert body["ok"] is False
        outcome = body["results"][0]["outcome"]
        assert outcome["kind"] == "drop"
        assert outcome["reason"] == "NAME_INVALID"
        assert "has invalid name" in outcome["message"]
        assert "mp-secret-value" not in r.text


async def test_settings_region_and_mapping_are_validated(settings: Settings) -> None:
    async with vendor_run(settings, "ga4", CONFIG) as run:
        for extra, field in (
            ({"region": "us"}, "config.region"),
            ({"event_mapping": {"Demo Booked": "Demo Booked"}}, "config.event_mapping"),
            ({"event_mapping": {"Session": "session_start"}}, "config.event_mapping"),
        ):
            r = await run.create_integration({**CONFIG, **extra})
            assert r.status_code == 422, r.text
            fields = [d["field"] for d in r.json()["error"]["details"]]
            assert any(f.startswith(field) for f in fields), fields
        good = await run.pipe.api.make_integration(
            run.source["id"],
            type="ga4",
            config={**CONFIG, "region": "eu", "event_mapping": {"Demo Booked": "generate_lead"}},
        )
        assert good["config"]["region"] == "eu"
