"""POST /v1/admin/integrations/{id}/preview (nothing sent) and /test (one test event sent)."""

from __future__ import annotations

from eventrelay.settings import Settings
from tests.support.sink import Sink
from tests.support.vendor import vendor_run

CONFIG = {
    "pixel_id": "1234567890",
    "access_token": "EAA-secret-token",
    "test_event_code": "TEST777",
}


async def test_preview_shows_the_exact_request_with_secrets_masked(settings: Settings) -> None:
    async with vendor_run(settings, "meta_capi", CONFIG) as run:
        path = f"/v1/admin/integrations/{run.integration['id']}/preview"
        r = await run.pipe.api.post(
            path,
            json={
                "batch": [
                    {
                        "type": "track",
                        "userId": "u",
                        "event": "Order Completed",
                        "context": {"userAgent": "UA"},
                    },
                    {"type": "identify", "userId": "u"},
                    {"type": "track", "userId": "u", "event": "No UA"},
                ]
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["sent"] is False
        [request] = body["requests"]
        assert request["method"] == "POST"
        assert request["url"].endswith("/v26.0/1234567890/events")
        assert request["headers"]["Authorization"] == "Bearer ***"
        assert request["body"]["data"][0]["event_name"] == "Purchase"
        assert request["event_indices"] == [0]
        assert body["skipped"] == [
            {"index": 1, "reason": "unsupported_type"},
            {"index": 2, "reason": "missing_user_agent"},
        ]
        assert "EAA-secret-token" not in r.text
        assert run.vendor.requests == []  # nothing was sent
        bad = await run.pipe.api.post(path, json={"event": {"type": "track", "userId": "u"}})
        assert bad.status_code == 422
        assert bad.json()["error"]["details"][0]["field"] == "event.event"


async def test_preview_reports_consent_filtering(settings: Settings) -> None:
    async with vendor_run(settings, "meta_capi", CONFIG) as run:
        event = {
            "type": "track",
            "userId": "u",
            "event": "x",
            "context": {
                "userAgent": "UA",
                "consent": {"categoryPreferences": {"Advertising": False}},
            },
        }
        r = await run.pipe.api.post(
            f"/v1/admin/integrations/{run.integration['id']}/preview", json={"event": event}
        )
        assert r.json()["filtered"] == [{"index": 0, "reason": "consent"}]
        assert r.json()["requests"] == []


async def test_test_call_sends_one_test_event_and_returns_the_answer(settings: Settings) -> None:
    async with vendor_run(settings, "meta_capi", CONFIG) as run:
        run.vendor.body = b'{"events_received": 1, "messages": [], "fbtrace_id": "X"}'
        r = await run.pipe.api.post(f"/v1/admin/integrations/{run.integration['id']}/test")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["ok"] is True
        [result] = body["results"]
        assert result["response"]["status"] == 200
        assert result["response"]["body"]["events_received"] == 1
        assert result["request"]["headers"]["Authorization"] == "Bearer ***"
        [sent] = run.vendor.requests
        assert sent.json()["test_event_code"] == "TEST777"
        run.vendor.default = 400
        run.vendor.body = b'{"error": {"message": "Invalid OAuth access token", "code": 190}}'
        r = await run.pipe.api.post(f"/v1/admin/integrations/{run.integration['id']}/test")
        assert r.json()["ok"] is False
        assert r.json()["results"][0]["outcome"]["kind"] == "auth"
        assert "Invalid OAuth access token" in r.json()["results"][0]["outcome"]["message"]


async def test_webhook_test_and_roles(settings: Settings) -> None:
    sink = await Sink().start()
    try:
        async with vendor_run(settings, "meta_capi", CONFIG) as run:
            api = run.pipe.api
            hook = await api.make_integration(
                run.source["id"], type="webhook", config={"url": sink.url + "/t"}
            )
            viewer = await api.make_token("viewer")
            assert (
                await api.post(f"/v1/admin/integrations/{hook['id']}/test", token=viewer)
            ).status_code == 403
            preview = await api.post(
                f"/v1/admin/integrations/{hook['id']}/preview",
                token=viewer,
                json={"event": {"type": "track", "userId": "u", "event": "x"}},
            )
            assert preview.status_code == 200
            r = await api.post(f"/v1/admin/integrations/{hook['id']}/test")
            assert r.json()["ok"] is True
            assert sink.requests[-1].json()["event"] == "Order Completed"
            warehouse = await api.stored_integration(
                run.source["id"],
                "s3",
                {
                    "bucket": "my-bucket",
                    "region": "us-east-1",
                    "access_key_id": "AKIAIOSFODNN7EXAMPLE",
                    "secret_access_key": "x",
                },
            )
            r = await api.post(f"/v1/admin/integrations/{warehouse}/test")
            assert r.status_code == 409
    finally:
        await sink.close()
