"""Google Ads end to end: /v1/track -> eventrelay -> a local stand-in serving both Google's OAuth
token endpoint (/token) and googleads.googleapis.com (routed by path)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import orjson

from eventrelay.settings import Settings
from tests.support.sink import Received, Sink
from tests.support.vendor import vendor_run

CONFIG = {
    "customer_id": "123-456-7890",
    "conversion_action_id": "987654321",
    "login_customer_id": "111-222-3333",
    "oauth_credentials": {
        "client_id": "client-id.apps.googleusercontent.com",
        "client_secret": "GOCSPX-secret-value",
        "refresh_token": "1//refresh-token-value",
    },
}
API_PATH = "/v26/customers/1234567890:uploadClickConversions"
PURCHASE: dict[str, Any] = {
    "userId": "u-1",
    "event": "Order Completed",
    "properties": {"order_id": "O-1", "revenue": 10.5, "currency": "usd", "gclid": "Cj0-GCLID"},
    "context": {
        "ip": "203.0.113.5",
        "location": {"country": "US"},
        "traits": {"email": "Ada.Lovelace+shop@gmail.com", "phone": "+44 7700 900123"},
        "consent": {"categoryPreferences": {"Advertising": True}},
    },
}
Answer = tuple[int, dict[str, str], bytes]
JSON = {"Content-Type": "application/json"}


def token_answer(token: str) -> Answer:
    body = {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}
    return 200, JSON, orjson.dumps(body)


def uploaded(r: Received) -> Answer:
    results = [
        {"conversionAction": c["conversionAction"], "conversionDateTime": c["conversionDateTime"]}
        for c in r.json()["conversions"]
    ]
    return 200, JSON, orjson.dumps({"results": results})


def google(
    api: Callable[[Received], Answer] = uploaded,
    token: Callable[[Received], Answer] = lambda _r: token_answer("ya29.first"),
) -> Callable[[Received], Answer]:
    """The stand-in's router: the token endpoint and the Ads API share one server."""

    def respond(r: Received) -> Answer:
        if r.path == "/token":
            return token(r)
        if r.path == API_PATH:
            return api(r)
        return 404, JSON, b'{"error": {"code": 404, "status": "NOT_FOUND"}}'

    return respond


def on(vendor: Sink, path: str) -> list[Received]:
    return [r for r in vendor.requests if r.path == path]


async def test_purchase_arrives_in_the_documented_shape(settings: Settings) -> None:
    # userIpAddress is opt-in, and sent only for a user known to be outside the EEA/UK/CH.
    config = {**CONFIG, "send_ip_address": True}
    async with vendor_run(settings, "google_ads", config, endpoints=("oauth",)) as run:
        run.vendor.responder = google()
        await run.send(**PURCHASE)
        await run.vendor.wait_for(lambda: len(on(run.vendor, API_PATH)) == 1)
        [token] = on(run.vendor, "/token")
        assert token.method == "POST"
        assert token.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert parse_qs(token.body.decode()) == {
            "grant_type": ["refresh_token"],
            "refresh_token": ["1//refresh-token-value"],
            "client_id": ["client-id.apps.googleusercontent.com"],
            "client_secret": ["GOCSPX-secret-value"],
        }
        [request] = on(run.vendor, API_PATH)
        assert request.method == "POST"
        assert request.headers["Authorization"] == "Bearer ya29.first"
        assert request.headers["login-customer-id"] == "1112223333"
        assert "developer-token" not in request.headers
        body = request.json()
        assert body["partialFailure"] is True
        assert body["validateOnly"] is False
        [conversion] = body["conversions"]
        assert conversion.pop("conversionDateTime")[-6:] == "+00:00"
        assert conversion == {
            "conversionAction": "customers/1234567890/conversionActions/987654321",
            "gclid": "Cj0-GCLID",
            "orderId": "O-1",
            "conversionValue": 10.5,
            "currencyCode": "USD",
            # gmail: dots and +suffix removed; phone in E.164 with the +.
            "userIdentifiers": [
                {"hashedEmail": hashlib.sha256(b"adalovelace@gmail.com").hexdigest()},
                {"hashedPhoneNumber": hashlib.sha256(b"+447700900123").hexdigest()},
            ],
            "userIpAddress": "203.0.113.5",
            "consent": {"adUserData": "GRANTED"},
        }
        await run.wait_metrics(successes=1)


async def test_transient_errors_are_retried_with_the_same_order_id(settings: Settings) -> None:
    async with vendor_run(settings, "google_ads", CONFIG, endpoints=("oauth",)) as run:
        failures = [
            (503, {"error": {"code": 503, "message": "unavailable", "status": "UNAVAILABLE"}}),
            (429, {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}),
        ]

        def api(r: Received) -> Answer:
            if failures:
                status, body = failures.pop(0)
                return status, JSON, orjson.dumps(body)
            return uploaded(r)

        run.vendor.responder = google(api)
        await run.send(**PURCHASE)
        await run.vendor.wait_for(lambda: len(on(run.vendor, API_PATH)) == 3, timeout=20)
        order_ids = {r.json()["conversions"][0]["orderId"] for r in on(run.vendor, API_PATH)}
        assert order_ids == {"O-1"}  # the dedup key is stable across retries
        assert len(on(run.vendor, "/token")) == 1  # the access token is cached
        await run.wait_metrics(successes=1)


async def test_refused_refresh_token_puts_the_integration_in_error(settings: Settings) -> None:
    async with vendor_run(settings, "google_ads", CONFIG, endpoints=("oauth",)) as run:
        refused = {
            "error": "invalid_grant",
            "error_description": "Token has been expired or revoked.",
        }
        run.vendor.responder = google(token=lambda _r: (400, JSON, orjson.dumps(refused)))
        await run.send(**PURCHASE)
        current = await run.wait_status("error")
        assert "invalid_grant" in current["last_error_message"]
        assert "refresh-token-value" not in current["last_error_message"]
        assert on(run.vendor, API_PATH) == []  # nothing was sent without a token


async def test_401_refreshes_the_token_once_then_succeeds(settings: Settings) -> None:
    async with vendor_run(settings, "google_ads", CONFIG, endpoints=("oauth",)) as run:
        tokens = ["ya29.revoked", "ya29.fresh"]

        def api(r: Received) -> Answer:
            if r.headers["Authorization"] == "Bearer ya29.revoked":
                body = {"error": {"code": 401, "message": "bad token", "status": "UNAUTHENTICATED"}}
                return 401, JSON, orjson.dumps(body)
            return uploaded(r)

        run.vendor.responder = google(api, token=lambda _r: token_answer(tokens.pop(0)))
        await run.send(**PURCHASE)
        await run.wait_metrics(successes=1)
        sent = [r.headers["Authorization"] for r in on(run.vendor, API_PATH)]
        assert sent == ["Bearer ya29.revoked", "Bearer ya29.fresh"]
        assert len(on(run.vendor, "/token")) == 2
        assert (await run.status())["status"] != "error"


async def test_partial_failure_drops_only_the_failed_row(settings: Settings) -> None:
    async with vendor_run(settings, "google_ads", CONFIG, endpoints=("oauth",)) as run:

        def api(r: Received) -> Answer:
            conversions = r.json()["conversions"]
            bad = [i for i, c in enumerate(conversions) if c.get("gclid") == "BAD"]
            if not bad:
                return uploaded(r)
            errors = [
                {
                    "errorCode": {"conversionUploadError": "UNPARSEABLE_GCLID"},
                    "message": "The click identifier could not be decoded.",
                    "location": {"fieldPathElements": [{"fieldName": "conversions", "index": i}]},
                }
                for i in bad
            ]
            body = {
                "results": [
                    {} if i in bad else {"gclid": c["gclid"]} for i, c in enumerate(conversions)
                ],
                "partialFailureError": {
                    "code": 3,
                    "message": "The click identifier could not be decoded.",
                    "details": [{"@type": "GoogleAdsFailure", "errors": errors}],
                },
            }
            return 200, JSON, orjson.dumps(body)

        run.vendor.responder = google(api)
        batch = [
            {**PURCHASE, "type": "track", "properties": {"order_id": f"O-{g}", "gclid": g}}
            for g in ("GOOD-1", "BAD", "GOOD-2")
        ]
        await run.send_batch(batch)
        m = await run.wait_metrics(successes=2, discarded=1)
        assert m["discarded.UNPARSEABLE_GCLID"] == 1
        assert len(on(run.vendor, API_PATH)) <= 3  # nothing was sent twice


async def test_admin_test_call_validates_only(settings: Settings) -> None:
    async with vendor_run(settings, "google_ads", CONFIG, endpoints=("oauth",)) as run:
        run.vendor.responder = google(lambda _r: (200, JSON, b"{}"))
        r = await run.admin_test()
        assert r.status_code == 200, r.text
        assert r.json()["ok"] is True
        [sent] = on(run.vendor, API_PATH)
        assert sent.json()["validateOnly"] is True
        assert sent.json()["partialFailure"] is True
        assert "GOCSPX-secret-value" not in r.text
        assert "1//refresh-token-value" not in r.text


async def test_event_mapping_must_name_conversion_actions(settings: Settings) -> None:
    async with vendor_run(settings, "google_ads", CONFIG, endpoints=("oauth",)) as run:
        r = await run.create_integration({**CONFIG, "event_mapping": {"Signed Up": "SIGNUP"}})
        assert r.status_code == 422, r.text
        fields = [d["field"] for d in r.json()["error"]["details"]]
        assert any(f.startswith("config.event_mapping") for f in fields), fields
