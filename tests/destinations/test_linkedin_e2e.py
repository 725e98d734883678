"""LinkedIn Conversions API end to end: /v1/track -> eventrelay -> a local stand-in of
api.linkedin.com (and www.linkedin.com/oauth for token refresh)."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qs

import orjson

from eventrelay.settings import Settings
from tests.support.sink import Received
from tests.support.vendor import VendorRun, vendor_run

RULES = {"Order Completed": "123456", "Product Added": "234567"}
CONFIG: dict[str, Any] = {
    "account_id": "508123456",
    "access_token": "AQX-stored-token",
    "conversion_rules": RULES,
}
REFRESH = {
    **CONFIG,
    "client_id": "86app",
    "client_secret": "client-secret-value",
    "refresh_token": "AQR-refresh-token",
}
EVENTS_PATH = "/rest/conversionEvents"
TOKEN_PATH = "/oauth/v2/accessToken"
PURCHASE: dict[str, Any] = {
    "userId": "u-1",
    "event": "Order Completed",
    "properties": {"order_id": "O-1", "revenue": 10.5, "currency": "USD"},
    "context": {
        "campaign": {"source": "linkedin", "li_fat_id": "fat-ABC-123"},
        "traits": {"email": "Ada@Example.com", "firstName": "Ada", "lastName": "Lovelace"},
    },
}
JSON = {"Content-Type": "application/json"}
Answer = tuple[int, dict[str, str], bytes]


def li_error(status: int, code: str, message: str) -> bytes:
    return orjson.dumps({"status": status, "code": code, "message": message})


def conversions(run: VendorRun) -> list[Received]:
    return [r for r in run.vendor.requests if r.path == EVENTS_PATH]


def token_calls(run: VendorRun) -> list[Received]:
    return [r for r in run.vendor.requests if r.path == TOKEN_PATH]


async def test_purchase_arrives_in_the_documented_shape(settings: Settings) -> None:
    async with vendor_run(settings, "linkedin", CONFIG) as run:
        run.vendor.default, run.vendor.body = 201, b""
        await run.send(**PURCHASE)
        await run.send(**{**PURCHASE, "event": "Newsletter Opened"})  # no rule: never sent
        await run.wait_metrics(successes=1, **{"filtered.unmapped": 1})
        [request] = conversions(run)
        assert request.method == "POST"
        assert request.headers["Authorization"] == "Bearer AQX-stored-token"
        assert request.headers["LinkedIn-Version"] == "202603"
        assert request.headers["X-Restli-Protocol-Version"] == "2.0.0"
        assert "X-RestLi-Method" not in request.headers  # one event: a plain object
        event = request.json()
        assert event["conversion"] == "urn:lla:llaPartnerConversion:123456"
        assert len(str(event["conversionHappenedAt"])) == 13  # epoch milliseconds
        assert event["conversionValue"] == {"currencyCode": "USD", "amount": "10.5"}
        assert len(event["eventId"]) == 36  # the messageId eventrelay assigned
        assert event["user"] == {
            "userIds": [
                {
                    "idType": "SHA256_EMAIL",
                    "idValue": hashlib.sha256(b"ada@example.com").hexdigest(),
                },
                {"idType": "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID", "idValue": "fat-ABC-123"},
            ],
            "userInfo": {"firstName": "Ada", "lastName": "Lovelace"},
        }


async def test_rate_limit_and_server_errors_are_retried(settings: Settings) -> None:
    async with vendor_run(settings, "linkedin", CONFIG) as run:
        answers: list[Answer] = [
            (429, {**JSON, "Retry-After": "0"}, li_error(429, "TOO_MANY_REQUESTS", "throttled")),
            (503, JSON, li_error(503, "SERVICE_UNAVAILABLE", "try later")),
        ]

        def respond(_r: Received) -> Answer:
            return answers.pop(0) if answers else (201, {}, b"")

        run.vendor.responder = respond
        await run.send(**PURCHASE)
        await run.wait_metrics(successes=1)
        sent = conversions(run)
        assert len(sent) == 3
        assert len({r.json()["eventId"] for r in sent}) == 1  # the dedup id survives retries


async def test_401_refreshes_the_token_once_then_succeeds(settings: Settings) -> None:
    async with vendor_run(settings, "linkedin", REFRESH, endpoints=("oauth",)) as run:
        issued = iter(["AQX-first", "AQX-second"])

        def respond(r: Received) -> Answer:
            if r.path == TOKEN_PATH:
                token = next(issued)
                return 200, JSON, orjson.dumps({"access_token": token, "expires_in": 5184000})
            if r.headers["Authorization"] == "Bearer AQX-first":  # revoked before it expired
                return 401, JSON, li_error(401, "REVOKED_ACCESS_TOKEN", "token revoked")
            return 201, {}, b""

        run.vendor.responder = respond
        await run.send(**PURCHASE)
        await run.wait_metrics(successes=1)
        tokens = token_calls(run)
        assert len(tokens) == 2  # the first token, then exactly one refresh
        for call in tokens:
            assert call.method == "POST"
            assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"
            assert parse_qs(call.body.decode()) == {
                "grant_type": ["refresh_token"],
                "refresh_token": ["AQR-refresh-token"],
                "client_id": ["86app"],
                "client_secret": ["client-secret-value"],
            }
        auth = [r.headers["Authorization"] for r in conversions(run)]
        assert auth == ["Bearer AQX-first", "Bearer AQX-second"]
        assert (await run.status())["status"] == "active"


async def test_401_without_refresh_credentials_puts_the_integration_in_error(
    settings: Settings,
) -> None:
    async with vendor_run(settings, "linkedin", CONFIG) as run:
        run.vendor.responder = lambda _r: (
            401,
            JSON,
            li_error(401, "EXPIRED_ACCESS_TOKEN", "The token used in the request has expired"),
        )
        await run.send(**PURCHASE)
        current = await run.wait_status("error")
        assert "The token used in the request has expired" in current["last_error_message"]
        assert "AQX-stored-token" not in current["last_error_message"]
        assert len(conversions(run)) == 1  # no refresh possible: not retried in a loop


async def test_refused_refresh_puts_the_integration_in_error(settings: Settings) -> None:
    async with vendor_run(settings, "linkedin", REFRESH, endpoints=("oauth",)) as run:

        def respond(r: Received) -> Answer:
            if r.path == TOKEN_PATH:
                body = {
                    "error": "invalid_grant",
                    "error_description": "The provided authorization grant is revoked",
                }
                return 400, JSON, orjson.dumps(body)
            return 201, {}, b""

        run.vendor.responder = respond
        await run.send(**PURCHASE)
        current = await run.wait_status("error")
        assert "invalid_grant" in current["last_error_message"]
        assert "AQR-refresh-token" not in current["last_error_message"]
        assert conversions(run) == []  # nothing is sent without a token


def _bad(element: dict[str, Any]) -> bool:
    return bool(element["conversionValue"]["amount"] == "13")


async def test_batch_element_statuses_settle_each_event(settings: Settings) -> None:
    async with vendor_run(settings, "linkedin", CONFIG) as run:

        def respond(r: Received) -> Answer:
            body = r.json()
            if "elements" not in body:  # the worker may have pulled a single event
                if _bad(body):
                    return 422, JSON, li_error(422, "FIELD_VALIDATION_FAILED", "bad event")
                return 201, {}, b""
            statuses = [
                {"status": 400, "error": {"status": 400, "message": "bad event"}}
                if _bad(element)
                else {"status": 201}
                for element in body["elements"]
            ]
            return 200, JSON, orjson.dumps({"elements": statuses})

        run.vendor.responder = respond
        batch = [
            {**PURCHASE, "type": "track", "properties": {"revenue": amount, "currency": "USD"}}
            for amount in (11, 13, 17)
        ]
        await run.send_batch(batch)
        await run.wait_metrics(successes=2, discarded=1)
        amounts = {
            e["conversionValue"]["amount"]
            for r in conversions(run)
            for e in r.json().get("elements", [r.json()])
        }
        assert amounts == {"11", "13", "17"}


async def test_a_refused_batch_is_split_to_deliver_the_good_events(settings: Settings) -> None:
    async with vendor_run(settings, "linkedin", CONFIG) as run:

        def respond(r: Received) -> Answer:
            body = r.json()
            elements = body.get("elements", [body])
            if any(_bad(e) for e in elements):
                return 422, JSON, li_error(422, "FIELD_VALIDATION_FAILED", "bad event")
            return (200, JSON, orjson.dumps({"elements": [{"status": 201}] * len(elements)}))

        run.vendor.responder = respond
        batch = [
            {**PURCHASE, "type": "track", "properties": {"revenue": amount, "currency": "USD"}}
            for amount in (11, 13, 17)
        ]
        await run.send_batch(batch)
        m = await run.wait_metrics(successes=2, discarded=1)
        assert m["discarded.http_422"] == 1


async def test_admin_test_reads_the_ad_account_and_sends_no_conversion(
    settings: Settings,
) -> None:
    async with vendor_run(settings, "linkedin", CONFIG) as run:
        run.vendor.body = b'{"id": 508123456, "name": "Test account", "test": false}'
        r = await run.admin_test()
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["ok"] is True
        [result] = body["results"]
        assert result["request"]["method"] == "GET"
        assert result["request"]["headers"]["Authorization"] == "Bearer ***"
        [call] = run.vendor.requests
        assert call.method == "GET"
        assert call.path == "/rest/adAccounts/508123456"
        assert call.headers["LinkedIn-Version"] == "202603"
        assert call.headers["Authorization"] == "Bearer AQX-stored-token"
        assert conversions(run) == []

        run.vendor.default, run.vendor.body = 401, li_error(401, "INVALID_ACCESS_TOKEN", "bad")
        r = await run.admin_test()
        assert r.json()["ok"] is False
        assert r.json()["results"][0]["outcome"]["kind"] == "auth"


async def test_refresh_credentials_are_secret_and_go_together(settings: Settings) -> None:
    async with vendor_run(settings, "linkedin", REFRESH) as run:
        config = run.integration["config"]
        assert config["client_id"] == "86app"
        assert config["client_secret"] == config["refresh_token"] == "***"
        partial = {**CONFIG, "client_id": "86app", "refresh_token": "AQR-refresh-token"}
        r = await run.create_integration(partial)
        assert r.status_code == 422, r.text
        assert "go together" in r.json()["error"]["message"]
        assert "AQR-refresh-token" not in r.text
        bad_rule = {**CONFIG, "conversion_rules": {"Order Completed": "urn:li:x"}}
        r = await run.create_integration(bad_rule)
        assert r.status_code == 422
        assert r.json()["error"]["details"][0]["field"].startswith("config.conversion_rules")
