"""Organisation rules at ingest, in both shapes (embedded: SQLite store and queue; scale-out:
PostgreSQL and NATS JetStream): dropped events are never stored and are counted, redacted and
hashed values reach neither the log nor a vendor, a change applies without a restart, and no
rules change nothing."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from eventrelay.telemetry import INGEST_EVENTS
from tests.support.pipeline import Pipeline
from tests.support.sink import Sink

PATH = "/v1/admin/organization/rules"
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HUMAN = "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def set_rules(pipe: Pipeline, source_id: str, rules: dict[str, Any]) -> None:
    r = await pipe.api.put(PATH, json=rules)
    assert r.status_code == 200, r.text
    directory = pipe.api.runtime.directory
    assert directory is not None

    async def applied() -> bool:
        entry = directory.by_id(source_id)
        assert entry is not None
        current = entry.org_rules.raw if entry.org_rules is not None else None
        return current == (r.json() if any(r.json().values()) else None)

    await pipe.eventually(applied)


async def hooked(pipe: Pipeline, sink: Sink) -> tuple[dict[str, Any], str]:
    src = await pipe.api.make_source()
    hook = await pipe.api.make_integration(
        src["id"], type="webhook", config={"url": sink.url + "/hook"}
    )
    return src, hook["id"]


def event(user_agent: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": "user-42",
        "event": "Order Completed",
        "context": {"userAgent": user_agent},
        **extra,
    }


async def test_bot_traffic_is_dropped_and_counted(pipe: Pipeline, sink: Sink) -> None:
    src, hook_id = await hooked(pipe, sink)
    paused = await pipe.api.make_integration(
        src["id"], type="webhook", config={"url": sink.url + "/paused"}, enabled=False
    )
    await set_rules(
        pipe,
        src["id"],
        {"drop": ['match(lowercase(context.userAgent), "*bot*")', 'context.ip = "10.1.2.3"']},
    )
    counter = INGEST_EVENTS.labels(src["id"], "filtered")
    before = counter._value.get()
    batch = [event(BOT), event(HUMAN), event(HUMAN, context={"ip": "10.1.2.3"}), event(BOT)]
    r = await pipe.ingest("/v1/batch", src["write_key"], {"batch": batch})
    assert r.status_code == 200 and r.json() == {"success": True}
    # A request whose every event is dropped still succeeds, and stores nothing.
    r = await pipe.ingest("/v1/track", src["write_key"], event(BOT))
    assert r.status_code == 200 and r.json() == {"success": True}
    await sink.wait_for(lambda: len(sink.events()) >= 1)

    async def counted() -> dict[str, Any] | None:
        m = await pipe.metrics(hook_id)
        return m if m.get("successes", 0) >= 1 and m.get("filtered.org_rule") == 4 else None

    metrics = await pipe.eventually(counted)
    assert metrics["successes"] == 1 and metrics.get("queued") == 1
    # Every integration of the source counts them, the paused one too.
    assert (await pipe.metrics(paused["id"]))["filtered.org_rule"] == 4
    assert counter._value.get() - before == 4
    (delivered,) = sink.events()
    assert delivered["context"]["userAgent"] == HUMAN
    assert pipe.api.runtime.queue is not None
    assert await pipe.api.runtime.queue.depth(hook_id) == 0


async def test_redacted_and_hashed_values_never_reach_the_log_or_the_vendor(
    pipe: Pipeline, sink: Sink
) -> None:
    src, _ = await hooked(pipe, sink)
    queue = pipe.api.runtime.queue
    assert queue is not None
    probe = f"int_probe{src['id'][-8:]}"  # a reader of the source's log, as a worker is
    await queue.subscribe(probe, src["id"])
    await set_rules(
        pipe,
        src["id"],
        {
            "redact": ["properties.email", "context.traits.phone"],
            "hash": ["userId", "properties.order_ref"],
        },
    )
    batch = [
        event(
            HUMAN,
            properties={"email": "ada@example.com", "order_ref": 90210, "total": 5},
            context={"userAgent": HUMAN, "traits": {"phone": "+33612345678", "plan": "pro"}},
        )
    ]
    r = await pipe.ingest("/v1/batch", src["write_key"], {"batch": batch})
    assert r.status_code == 200, r.text
    secrets = (b"ada@example.com", b"+33612345678", b"user-42", b"90210")

    stored = await queue.pull(probe, 10, timeout=5)
    assert len(stored) == 1
    assert not any(s in stored[0].data for s in secrets), stored[0].data
    await queue.ack(probe, stored)
    await queue.purge(probe)

    await sink.wait_for(lambda: len(sink.events()) == 1)
    raw = sink.requests[0].body
    assert not any(s in raw for s in secrets), raw
    (sent,) = sink.events()
    assert sent["userId"] == sha("user-42")
    assert sent["properties"] == {"order_ref": sha("90210"), "total": 5}
    assert sent["context"]["traits"] == {"plan": "pro"}
    assert orjson.loads(stored[0].data)["userId"] == sha("user-42")


async def test_a_change_applies_without_a_restart_and_no_rules_change_nothing(
    pipe: Pipeline, sink: Sink
) -> None:
    src, hook_id = await hooked(pipe, sink)
    directory = pipe.api.runtime.directory
    assert directory is not None
    entry = directory.by_id(src["id"])
    assert entry is not None and entry.org_rules is None  # the common case: nothing to apply

    plain = event(BOT, properties={"email": "ada@example.com"})
    assert (await pipe.ingest("/v1/track", src["write_key"], plain)).status_code == 200
    await sink.wait_for(lambda: len(sink.events()) == 1)
    assert sink.events()[0]["properties"] == {"email": "ada@example.com"}
    assert sink.events()[0]["userId"] == "user-42"

    await set_rules(pipe, src["id"], {"drop": ['contains(context.userAgent, "bot")']})
    assert (await pipe.ingest("/v1/track", src["write_key"], plain)).status_code == 200
    await set_rules(pipe, src["id"], {"redact": ["properties.email"]})
    assert (await pipe.ingest("/v1/track", src["write_key"], plain)).status_code == 200
    await sink.wait_for(lambda: len(sink.events()) == 2)
    assert "email" not in sink.events()[1].get("properties", {})

    await set_rules(pipe, src["id"], {})  # removed: back to the plain path
    assert (await pipe.ingest("/v1/track", src["write_key"], plain)).status_code == 200
    await sink.wait_for(lambda: len(sink.events()) == 3)
    assert sink.events()[2]["properties"] == {"email": "ada@example.com"}
    metrics = await pipe.metrics(hook_id)
    assert metrics["filtered.org_rule"] == 1


async def test_the_live_view_shows_dropped_events_as_filtered_by_org_rule(
    pipe: Pipeline, sink: Sink
) -> None:
    src, hook_id = await hooked(pipe, sink)
    await set_rules(
        pipe, src["id"], {"drop": ['contains(context.userAgent, "bot")'], "hash": ["userId"]}
    )
    tap = pipe.api.runtime.tap
    assert tap is not None
    listener = await tap.listen(src["id"])
    try:
        batch = [event(BOT), event(HUMAN)]
        assert (
            await pipe.ingest("/v1/batch", src["write_key"], {"batch": batch})
        ).status_code == 200
        entries = []
        while len(entries) < 2:
            entry = await listener.next(timeout=5)
            assert entry is not None
            entries.append(orjson.loads(entry))
    finally:
        await tap.unlisten(listener)
    by_agent = {e["event"]["context"]["userAgent"]: e for e in entries}
    assert by_agent[BOT]["routing"] == [
        {"integration_id": hook_id, "type": "webhook", "decision": "filtered", "reason": "org_rule"}
    ]
    assert by_agent[HUMAN]["routing"][0]["decision"] == "queued"
    # What the view shows is what was stored: hashed, dropped or not.
    assert {e["event"]["userId"] for e in entries} == {sha("user-42")}


async def test_stored_rules_that_no_longer_compile_refuse_ingest(
    pipe: Pipeline, sink: Sink
) -> None:
    """Rules saved under an older, laxer engine: fail closed (503, SDKs retry) rather than store
    events the operator wanted redacted."""
    from eventrelay.bus import Change
    from eventrelay.routing.directory import UNUSABLE
    from eventrelay.store import orgs

    src, _ = await hooked(pipe, sink)
    rt = pipe.api.runtime
    org_id = (await pipe.api.get("/v1/admin/organization")).json()["id"]
    async with rt.db.transaction() as conn:
        await orgs.set_rules(conn, org_id, {"redact": ["properties..email"]})
    await rt.bus.publish(Change("org", org_id))
    directory = rt.directory
    assert directory is not None

    async def unusable() -> bool:
        entry = directory.by_id(src["id"])
        return entry is not None and entry.org_rules is UNUSABLE

    await pipe.eventually(unusable)
    r = await pipe.ingest("/v1/track", src["write_key"], event(HUMAN))
    assert r.status_code == 503, r.text
    assert (await pipe.api.put(PATH, json={"redact": ["properties.email"]})).status_code == 200
    await pipe.eventually(lambda: _accepts(pipe, src["write_key"]))
    await sink.wait_for(lambda: len(sink.events()) == 1)


async def _accepts(pipe: Pipeline, write_key: str) -> bool:
    r = await pipe.ingest("/v1/track", write_key, event(HUMAN))
    return r.status_code == 200
