"""Issue 9.3: an unexpected error in delivery (a request the HTTP client refuses, an answer
the destination cannot read, a stored config no longer valid) is a recorded failure and, when
it repeats, the error state with a message: never a silent retry loop. `/test` answers with
the failure, never 500. Both shapes."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import update

from eventrelay.bus import Change
from eventrelay.settings import Settings
from eventrelay.store.tables import integrations
from eventrelay.timeutil import utcnow
from tests.support.fragile import fragile_destination
from tests.support.pipeline import Pipeline, running_pipeline
from tests.support.sink import Sink


async def _in_error(pipe: Pipeline, integration_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        current = await pipe.integration(integration_id)
        return current if current["status"] == "error" else None

    result: dict[str, Any] = await pipe.eventually(check)
    return result


async def test_a_destination_bug_is_recorded_and_ends_in_the_error_state(
    settings: Settings, sink: Sink
) -> None:
    with fragile_destination() as type_:
        async with running_pipeline(settings) as pipe:
            src = await pipe.api.make_source()
            integration = await pipe.api.make_integration(
                src["id"], type=type_, config={"url": sink.url + "/hook"}
            )
            await pipe.track(src["write_key"])
            current = await _in_error(pipe, integration["id"])
            assert "unexpected error (KeyError)" in current["last_error_message"]
            attempts = len(sink.requests)
            assert attempts >= 3
            failures = await pipe.failures(integration["id"])
            assert failures, "every failed attempt is in the failure log"
            assert {f["reason"] for f in failures} == {"internal_error"}
            assert "KeyError" in failures[0]["error"]
            assert failures[0]["request"]["method"] == "POST"
            m = await pipe.metrics(integration["id"])
            assert m["retried"] >= 2
            assert pipe.api.runtime.queue is not None
            assert await pipe.api.runtime.queue.depth(integration["id"]) == 1  # kept
            await asyncio.sleep(0.3)
            assert len(sink.requests) == attempts


async def test_test_call_reports_a_destination_bug_without_a_500(
    settings: Settings, sink: Sink
) -> None:
    with fragile_destination() as type_:
        async with running_pipeline(settings) as pipe:
            src = await pipe.api.make_source()
            integration = await pipe.api.make_integration(
                src["id"], type=type_, config={"url": sink.url + "/hook"}, enabled=False
            )
            r = await pipe.api.post(f"/v1/admin/integrations/{integration['id']}/test")
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["ok"] is False
            assert body["results"][0]["outcome"]["reason"] == "internal_error"


async def _store_legacy_header(pipe: Pipeline, integration_id: str, value: str) -> None:
    """What an older eventrelay accepted: a header value with a control character."""
    rt = pipe.api.runtime
    async with rt.db.transaction() as conn:
        row = (
            await conn.execute(integrations.select().where(integrations.c.id == integration_id))
        ).one()
        secrets = rt.vault.decrypt_json(row.secrets)
        secrets["/headers/X-Api-Key"] = value
        await conn.execute(
            update(integrations)
            .where(integrations.c.id == integration_id)
            .values(secrets=rt.vault.encrypt_json(secrets), updated_at=utcnow())
        )
    await rt.bus.publish(Change("integration", integration_id))


async def test_a_stored_config_no_longer_valid_puts_the_integration_in_error(
    settings: Settings, sink: Sink
) -> None:
    async with running_pipeline(settings) as pipe:
        src = await pipe.api.make_source()
        integration = await pipe.api.make_integration(
            src["id"],
            type="webhook",
            config={"url": sink.url + "/hook", "headers": {"X-Api-Key": "k-1"}},
        )
        await _store_legacy_header(pipe, integration["id"], "k\x0b1")
        current = await _in_error(pipe, integration["id"])
        await pipe.track(src["write_key"])
        message = current["last_error_message"]
        assert "stored configuration is invalid" in message
        assert "config.headers.X-Api-Key" in message
        assert "k\x0b1" not in message
        assert sink.requests == []

        r = await pipe.api.post(f"/v1/admin/integrations/{integration['id']}/test")
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "invalid_stored_config"
        assert r.json()["error"]["details"][0]["field"] == "config.headers.X-Api-Key"

        # Fixing the header resumes delivery, and the kept event arrives.
        r = await pipe.api.put(
            f"/v1/admin/integrations/{integration['id']}",
            json={
                "enabled": True,
                "config": {"url": sink.url + "/hook", "headers": {"X-Api-Key": "k-2"}},
            },
        )
        assert r.status_code == 200, r.text
        await sink.wait_for(lambda: len(sink.requests) == 1)
        assert sink.requests[0].headers["X-Api-Key"] == "k-2"


async def test_an_unconfirmed_acknowledgement_leaves_the_delivery_counted_as_delivered(
    settings: Settings, sink: Sink
) -> None:
    """The vendor accepted the event but the queue could not confirm its ack (NATS restarting,
    a full disk): it counts as delivered, not as retried (it may come back after its lease)."""
    async with running_pipeline(settings) as pipe:
        queue = pipe.api.runtime.queue
        assert queue is not None
        real_ack = queue.ack
        refused: list[int] = []

        async def ack_once_refused(stream: str, deliveries: Any) -> None:
            if not refused:
                refused.append(len(deliveries))
                raise ConnectionError("queue away")
            await real_ack(stream, deliveries)

        queue.ack = ack_once_refused  # type: ignore[method-assign]
        src = await pipe.api.make_source()
        integration = await pipe.api.make_integration(
            src["id"], type="webhook", config={"url": sink.url + "/hook"}
        )
        await pipe.track(src["write_key"])

        async def counted() -> dict[str, Any] | None:
            m = await pipe.metrics(integration["id"])
            return m if m.get("successes") == 1 else None

        m = await pipe.eventually(counted)
        assert refused == [1]
        assert m.get("retried", 0) == 0
        assert (await pipe.integration(integration["id"]))["status"] == "active"
