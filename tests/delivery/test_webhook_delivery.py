"""Delivery to a real local webhook receiver: signing, batching, retries, discards, expiry,
error state and resume, isolation, SSRF."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from standardwebhooks import Webhook

from eventrelay.settings import Settings
from tests.support.pipeline import Pipeline, running_pipeline
from tests.support.sink import Sink

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


async def hook(
    pipe: Pipeline, sink: Sink, path: str = "/hook", consent: list[str] | None = None, **config: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    src = await pipe.api.make_source()
    body: dict[str, Any] = {
        "type": "webhook",
        "config": {"url": sink.url + path, **config},
    }
    if consent is not None:
        body["consent_categories"] = consent
    integration = await pipe.api.make_integration(src["id"], **body)
    return src, integration


async def test_events_arrive_signed_and_verifiable(pipe: Pipeline, sink: Sink) -> None:
    src, integration = await hook(pipe, sink, signing_secret=SECRET, headers={"X-Api-Key": "k-123"})
    await pipe.track(src["write_key"], properties={"revenue": 9.99})
    await sink.wait_for(lambda: len(sink.requests) == 1)
    request = sink.requests[0]
    assert request.method == "POST"
    assert request.headers["X-Api-Key"] == "k-123"
    assert request.headers["Content-Type"] == "application/json"
    # The standardwebhooks library is the receiver: it verifies the signature and timestamp.
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert payload["event"] == "Order Completed"
    assert payload["properties"] == {"revenue": 9.99}
    assert payload["userId"] == "u1"
    assert request.headers["webhook-id"].startswith("msg_")

    async def delivered() -> bool:
        return (await pipe.integration(integration["id"]))["last_delivery_at"] is not None

    await pipe.eventually(delivered)
    m = await pipe.metrics(integration["id"])
    assert m["successes.successes_on_first_attempt"] == 1
    assert m["time_to_success"] == 1


async def test_tampered_body_fails_verification(pipe: Pipeline, sink: Sink) -> None:
    src, _ = await hook(pipe, sink, signing_secret=SECRET)
    await pipe.track(src["write_key"])
    await sink.wait_for(lambda: len(sink.requests) == 1)
    request = sink.requests[0]
    with pytest.raises(Exception, match=r"(?i)signature"):
        Webhook(SECRET).verify(request.body.replace(b"u1", b"u2"), request.headers)


async def test_batched_delivery_by_size_and_interval(pipe: Pipeline, sink: Sink) -> None:
    src, _ = await hook(pipe, sink, batch=True, batch_size=3, batch_interval_ms=300)
    events = [{"type": "track", "userId": "u", "event": f"e{i}"} for i in range(7)]
    started = time.monotonic()
    r = await pipe.ingest("/v1/batch", src["write_key"], {"batch": events})
    assert r.status_code == 200
    await sink.wait_for(lambda: len(sink.events()) == 7)
    sizes = sorted(len(r.json()) for r in sink.requests)
    assert sizes == [1, 3, 3]
    assert all(isinstance(r.json(), list) for r in sink.requests)
    assert sorted(e["event"] for e in sink.events()) == [f"e{i}" for i in range(7)]
    # The partial batch waited for the interval, no more than a little over it.
    assert time.monotonic() - started < 3


async def test_custom_method(pipe: Pipeline, sink: Sink) -> None:
    src, _ = await hook(pipe, sink, method="PUT")
    await pipe.track(src["write_key"])
    await sink.wait_for(lambda: len(sink.requests) == 1)
    assert sink.requests[0].method == "PUT"


async def test_retry_with_backoff_then_success(pipe: Pipeline, sink: Sink) -> None:
    sink.statuses = [500, 503]
    src, integration = await hook(pipe, sink, signing_secret=SECRET)
    await pipe.track(src["write_key"])
    await sink.wait_for(lambda: len(sink.requests) == 3)
    ids = {r.headers["webhook-id"] for r in sink.requests}
    assert len(ids) == 1  # the same event keeps its webhook-id across retries

    async def counted() -> Any:
        m = await pipe.metrics(integration["id"])
        return m if m["successes"] == 1 else None

    m = await pipe.eventually(counted)
    assert m["successes.successes_after_retry"] == 1
    assert m["retried"] == 2
    failures = await pipe.failures(integration["id"])
    assert failures, "failed attempts are listed"
    first = failures[-1]
    assert first["outcome"] == "retry"
    assert first["status_code"] in (500, 503)
    assert first["request"]["method"] == "POST"
    assert first["response"]["body"] == '{"ok":true}'


async def test_retry_after_is_honoured(settings: Settings, sink: Sink) -> None:
    sink.responder = lambda r: (
        (429, {"Retry-After": "1"}, b"slow down") if len(sink.requests) == 1 else None
    )
    async with running_pipeline(settings, retry_cap_seconds=5) as pipe:
        src, _ = await hook(pipe, sink)
        await pipe.track(src["write_key"])
        await sink.wait_for(lambda: len(sink.requests) == 2, timeout=10)
    gap = sink.requests[1].at - sink.requests[0].at
    assert gap >= 0.95, gap  # retry base here is 0.05 s: only Retry-After explains the wait


async def test_client_errors_are_discarded_with_reason(pipe: Pipeline, sink: Sink) -> None:
    sink.default = 400
    sink.body = b'{"error":"bad field"}'
    src, integration = await hook(pipe, sink, headers={"Authorization": "Bearer top-secret-1"})
    await pipe.track(src["write_key"])
    await sink.wait_for(lambda: len(sink.requests) == 1)

    async def discarded() -> Any:
        m = await pipe.metrics(integration["id"])
        return m if m["discarded"] == 1 else None

    m = await pipe.eventually(discarded)
    assert m["discarded.http_400"] == 1
    await asyncio.sleep(0.3)
    assert len(sink.requests) == 1  # never retried
    assert pipe.api.delivery is not None
    await pipe.api.delivery.failures.flush()
    r = await pipe.api.get(f"/v1/admin/integrations/{integration['id']}/failures")
    [failure] = r.json()["data"]
    assert failure["outcome"] == "drop"
    assert failure["reason"] == "http_400"
    assert failure["response"]["body"] == '{"error":"bad field"}'
    assert failure["request"]["headers"]["Authorization"] == "Bearer ***"
    assert "top-secret-1" not in r.text
    integration_now = await pipe.integration(integration["id"])
    assert "bad field" in integration_now["last_error_message"]
    assert integration_now["status"] == "active"  # one refusal is not a sustained failure


async def test_expiry_after_max_age(settings: Settings, sink: Sink) -> None:
    sink.default = 500
    async with running_pipeline(settings, max_event_age_seconds=0.6) as pipe:
        src, integration = await hook(pipe, sink)
        await pipe.track(src["write_key"])

        async def expired() -> Any:
            m = await pipe.metrics(integration["id"])
            return m if m["expired"] == 1 else None

        await pipe.eventually(expired)
        count = len(sink.requests)
        await asyncio.sleep(0.5)
        assert len(sink.requests) == count


async def test_auth_failure_sets_error_state_keeps_events_and_resumes(
    pipe: Pipeline, sink: Sink
) -> None:
    sink.default = 401
    sink.body = b"invalid api key for k-SECRET-9"
    src, integration = await hook(pipe, sink, headers={"X-Api-Key": "k-SECRET-9"})
    await pipe.track(src["write_key"], event="first")

    async def in_error() -> Any:
        current = await pipe.integration(integration["id"])
        return current if current["status"] == "error" else None

    current = await pipe.eventually(in_error)
    assert "invalid api key" in current["last_error_message"]
    assert "k-SECRET-9" not in current["last_error_message"]  # the vendor echoed a secret
    assert current["last_error_at"] is not None
    await pipe.track(src["write_key"], event="second")  # still accepted and kept
    await asyncio.sleep(0.3)
    attempts = len(sink.requests)
    await asyncio.sleep(0.5)
    assert len(sink.requests) == attempts  # delivery is paused
    assert pipe.api.runtime.queue is not None
    assert await pipe.api.runtime.queue.depth(integration["id"]) == 2
    audit = (
        await pipe.api.get("/v1/admin/audit-log", params={"resource_id": integration["id"]})
    ).json()["data"]
    assert audit[0]["action"] == "integration.status_changed"
    assert audit[0]["actor"]["name"] == "delivery"

    sink.default = 200
    r = await pipe.api.post(
        f"/v1/admin/integrations/{integration['id']}/status", json={"status": "active"}
    )
    assert r.json()["status"] == "active"
    await sink.wait_for(
        lambda: {"first", "second"} <= {e["event"] for e in sink.events()[attempts:]}
    )


async def test_resume_with_enabled_true(pipe: Pipeline, sink: Sink) -> None:
    sink.default = 403
    src, integration = await hook(pipe, sink)
    await pipe.track(src["write_key"])

    async def in_error() -> bool:
        return (await pipe.integration(integration["id"]))["status"] == "error"

    await pipe.eventually(in_error)
    sink.default = 200
    before = len(sink.requests)
    await pipe.api.put(f"/v1/admin/integrations/{integration['id']}", json={"enabled": True})
    await sink.wait_for(lambda: len(sink.requests) > before)

    async def delivered() -> bool:
        return (await pipe.metrics(integration["id"]))["successes"] == 1

    await pipe.eventually(delivered)


async def test_sustained_failure_enters_error(settings: Settings, sink: Sink) -> None:
    sink.default = 503
    async with running_pipeline(settings, error_window_seconds=0.5) as pipe:
        src, integration = await hook(pipe, sink)
        await pipe.track(src["write_key"])

        async def in_error() -> Any:
            current = await pipe.integration(integration["id"])
            return current if current["status"] == "error" else None

        current = await pipe.eventually(in_error)
        assert "no successful delivery" in current["last_error_message"]


async def test_410_gone_disables(pipe: Pipeline, sink: Sink) -> None:
    sink.default = 410
    src, integration = await hook(pipe, sink)
    await pipe.track(src["write_key"])

    async def in_error() -> Any:
        current = await pipe.integration(integration["id"])
        return current if current["status"] == "error" else None

    current = await pipe.eventually(in_error)
    assert "http_410" in current["last_error_message"]


async def test_disabled_integration_receives_nothing_new(pipe: Pipeline, sink: Sink) -> None:
    src, integration = await hook(pipe, sink)
    await pipe.api.put(f"/v1/admin/integrations/{integration['id']}", json={"enabled": False})
    await pipe.track(src["write_key"])
    await asyncio.sleep(0.5)
    assert sink.requests == []
    assert (await pipe.metrics(integration["id"]))["filtered.disabled"] == 1


async def test_a_hanging_vendor_does_not_delay_another(settings: Settings) -> None:
    slow, fast = await Sink().start(), await Sink().start()
    slow.delay = 30
    try:
        async with running_pipeline(settings, http_timeout_seconds=20) as pipe:
            src = await pipe.api.make_source()
            await pipe.api.make_integration(
                src["id"], type="webhook", config={"url": slow.url + "/slow"}
            )
            await pipe.api.make_integration(
                src["id"], type="webhook", config={"url": fast.url + "/fast"}
            )
            for i in range(20):
                await pipe.track(src["write_key"], event=f"e{i}")
            started = time.monotonic()
            await fast.wait_for(lambda: len(fast.requests) == 20, timeout=5)
            assert time.monotonic() - started < 3
            assert len(slow.requests) >= 1  # it is hanging, not idle
            # Events sent after the hang started are on time too.
            sent = time.time()
            await pipe.track(src["write_key"], event="late")
            await fast.wait_for(lambda: len(fast.requests) == 21, timeout=3)
            assert fast.requests[-1].at - sent < 1.0
    finally:
        await slow.close()
        await fast.close()


async def test_consent_checked_again_at_delivery(pipe: Pipeline, sink: Sink) -> None:
    """The integration requires more consent by the time a retried event is sent again."""
    sink.responder = lambda r: (
        (503, {"Retry-After": "1"}, b"busy") if len(sink.requests) == 1 else None
    )
    src, integration = await hook(pipe, sink, consent=[])
    await pipe.track(src["write_key"])  # no consent information at all
    await sink.wait_for(lambda: len(sink.requests) == 1)
    await pipe.api.put(
        f"/v1/admin/integrations/{integration['id']}", json={"consent_categories": ["advertising"]}
    )

    async def filtered() -> Any:
        m = await pipe.metrics(integration["id"])
        return m if m.get("filtered.consent") == 1 else None

    await pipe.eventually(filtered)
    assert len(sink.requests) == 1


async def test_ssrf_refused_at_config_time(settings: Settings) -> None:
    async with running_pipeline(settings, allow_private_targets=False) as pipe:
        src = await pipe.api.make_source()
        for url in (
            "http://127.0.0.1:8080/x",
            "http://localhost:9/x",  # a host name that resolves to 127.0.0.1
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.5/hook",
            "http://[::1]/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://100.100.100.200/x",
        ):
            r = await pipe.api.post(
                "/v1/admin/integrations",
                json={
                    "source_id": src["id"],
                    "type": "webhook",
                    "name": "x",
                    "config": {"url": url},
                },
            )
            assert r.status_code == 422, url
            assert r.json()["error"]["details"][0]["field"] == "config.url"
        # A name that does not resolve yet is accepted: it is checked again at every connect.
        r = await pipe.api.post(
            "/v1/admin/integrations",
            json={
                "source_id": src["id"],
                "type": "webhook",
                "name": "x",
                "config": {"url": "https://hooks.not-resolvable.invalid/x"},
            },
        )
        assert r.status_code == 201


async def test_ssrf_refused_at_connect_time() -> None:
    """DNS rebinding: a name that passed the config check resolves to an internal address at
    delivery. The guarded resolver refuses it (as it refuses IP literals)."""
    from eventrelay.delivery.sender import HttpSender, TransportError
    from eventrelay.destinations.base import HttpRequest

    target = await Sink().start()
    sender = HttpSender(timeout=5, allow_private_targets=False)
    await sender.start()
    try:
        for url in (f"http://localhost:{target.port}/x", f"http://127.0.0.1:{target.port}/x"):
            request = HttpRequest("POST", url, {}, b"{}", (0,), user_target=True)
            with pytest.raises(TransportError) as info:
                await sender.send(request)
            assert info.value.reason == "target_refused"
        assert target.requests == []
        # Operator-configured vendor URLs (user_target=False) are not subject to the guard.
        vendor = HttpRequest("POST", f"http://127.0.0.1:{target.port}/v", {}, b"{}", (0,))
        assert (await sender.send(vendor)).status == 200
    finally:
        await sender.close()
        await target.close()


async def test_refused_target_at_delivery_puts_integration_in_error(settings: Settings) -> None:
    async with running_pipeline(settings) as pipe:
        src = await pipe.api.make_source()
        integration = await pipe.api.make_integration(
            src["id"], type="webhook", config={"url": "http://localhost:9/x"}
        )
    # Same database, now without the test-only allowance: the stored URL is refused on connect.
    async with running_pipeline(settings, allow_private_targets=False) as pipe:
        await pipe.track(src["write_key"])

        async def in_error() -> Any:
            current = await pipe.integration(integration["id"])
            return current if current["status"] == "error" else None

        current = await pipe.eventually(in_error)
        assert "internal address" in current["last_error_message"]


async def test_a_slow_vendor_is_not_sent_the_same_event_twice(
    settings: Settings, sink: Sink
) -> None:
    """A request outlasting the queue's lease (JetStream ack_wait, 1 s here) keeps its events
    reserved, so they are not handed out again and sent twice."""
    sink.delay = 2.5
    async with running_pipeline(settings, nats_ack_wait_seconds=1.0) as pipe:
        src, _ = await hook(pipe, sink)
        await pipe.track(src["write_key"])
        await sink.wait_for(lambda: len(sink.requests) == 1)
        await asyncio.sleep(3.5)
        assert len(sink.requests) == 1
