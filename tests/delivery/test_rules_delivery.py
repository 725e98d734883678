"""Routing rules end to end through a real webhook receiver, in both shapes (embedded: SQLite
store and queue; scale-out: PostgreSQL and NATS JetStream): trigger, each filter action,
sampling stable per user, mappings, fail-closed transformations, and rule changes reaching
the workers."""

from __future__ import annotations

from typing import Any

from eventrelay.rules.actions import in_sample
from tests.support.pipeline import Pipeline
from tests.support.sink import Sink


async def hook(pipe: Pipeline, sink: Sink, rules: dict[str, Any], **config: Any) -> tuple[str, str]:
    src = await pipe.api.make_source()
    integration = await pipe.api.make_integration(
        src["id"], type="webhook", config={"url": sink.url + "/hook", "rules": rules, **config}
    )
    return src["write_key"], integration["id"]


async def send(pipe: Pipeline, key: str, events: list[dict[str, Any]]) -> None:
    r = await pipe.ingest("/v1/batch", key, {"batch": events})
    assert r.status_code == 200, r.text


async def filtered_counts(pipe: Pipeline, integration_id: str, total: int) -> dict[str, int]:
    async def settled() -> dict[str, int] | None:
        m = await pipe.metrics(integration_id)
        if m.get("successes", 0) + m.get("filtered", 0) < total:
            return None
        return {k.removeprefix("filtered."): v for k, v in m.items() if k.startswith("filtered.")}

    result: dict[str, int] = await pipe.eventually(settled)
    return result


async def test_trigger_and_filters(pipe: Pipeline, sink: Sink) -> None:
    key, integration_id = await hook(
        pipe,
        sink,
        {
            "trigger": 'type = "track" and match(event, "Order *")',
            "filters": [
                {"if": "properties.total < 1", "action": "drop"},
                {
                    "if": {
                        "logical": "and",
                        "conditions": [
                            {"property": "properties.currency", "operator": "is", "values": ["EUR"]}
                        ],
                    },
                    "action": "drop_properties",
                    "paths": ["properties.card.number", "context.ip"],
                },
                {
                    "if": 'event = "Order Refunded"',
                    "action": "allow_properties",
                    "paths": ["properties.total", "properties.card.brand"],
                },
            ],
        },
    )
    card = {"number": "4111", "brand": "visa"}
    await send(
        pipe,
        key,
        [
            {"type": "identify", "userId": "u1", "traits": {"a": 1}},
            {"type": "track", "userId": "u1", "event": "Signed Up"},
            {
                "type": "track",
                "userId": "u1",
                "event": "Order Completed",
                "properties": {"total": 0},
            },
            {
                "type": "track",
                "userId": "u1",
                "event": "Order Completed",
                "properties": {"total": 10, "currency": "EUR", "card": card},
                "context": {"ip": "203.0.113.1"},
            },
            {
                "type": "track",
                "userId": "u1",
                "event": "Order Refunded",
                "properties": {"total": 5, "currency": "USD", "card": card, "note": "x"},
            },
        ],
    )
    counts = await filtered_counts(pipe, integration_id, 5)
    assert counts == {"trigger": 2, "filter": 1}
    await sink.wait_for(lambda: len(sink.events()) == 2)
    completed, refunded = sorted(sink.events(), key=lambda e: e["event"])
    assert completed["properties"] == {"total": 10, "currency": "EUR", "card": {"brand": "visa"}}
    assert "ip" not in completed.get("context", {})
    assert refunded["properties"] == {"total": 5, "card": {"brand": "visa"}}
    assert refunded["messageId"]  # core fields are untouched


async def test_sampling_is_stable_per_user(pipe: Pipeline, sink: Sink) -> None:
    key, integration_id = await hook(
        pipe, sink, {"filters": [{"if": 'type = "track"', "action": "sample", "percent": 50}]}
    )
    users = [f"user-{i}" for i in range(30)]
    events = [{"type": "track", "userId": u, "event": f"e{n}"} for n in range(2) for u in users] + [
        {"type": "identify", "userId": "user-0"}
    ]
    await send(pipe, key, events)
    expected = {u for u in users if in_sample({"userId": u}, 50, "")}
    assert 0 < len(expected) < len(users)
    counts = await filtered_counts(pipe, integration_id, len(events))
    assert counts == {"sample": 2 * (len(users) - len(expected))}
    await sink.wait_for(lambda: len(sink.events()) == 2 * len(expected) + 1)
    delivered = [e["userId"] for e in sink.events() if e["type"] == "track"]
    # A user is in or out on every event.
    assert set(delivered) == expected
    assert all(delivered.count(u) == 2 for u in expected)


async def test_mapping_and_fail_closed_transformation(pipe: Pipeline, sink: Sink) -> None:
    key, integration_id = await hook(
        pipe,
        sink,
        {
            "transformation": {
                "mapping": {
                    "properties.email": "lowercase(coalesce(traits.email, context.traits.email))",
                    "properties.value": "to_number(properties.total)",
                    "properties.label": '"{{event}} #{{properties.order_id}}"',
                    "properties.total.cents": 'concat(properties.total, "00")',
                }
            }
        },
    )
    await send(
        pipe,
        key,
        [
            {
                "type": "track",
                "userId": "u1",
                "event": "Paid",
                "properties": {"total": {"v": "12"}, "order_id": 7},
                "context": {"traits": {"email": "Ada@Example.COM"}},
            },
            # properties.total is a string here: the mapping cannot set total.cents under it.
            {"type": "track", "userId": "u2", "event": "Paid", "properties": {"total": "12"}},
        ],
    )
    counts = await filtered_counts(pipe, integration_id, 2)
    assert counts == {"transformation_error": 1}
    await sink.wait_for(lambda: len(sink.events()) == 1)
    (event,) = sink.events()
    assert event["properties"]["email"] == "ada@example.com"
    assert event["properties"]["label"] == "Paid #7"
    assert event["properties"]["value"] is None  # an object is not a number
    assert event["properties"]["total"] == {"v": "12", "cents": "00"}

    async def failure() -> Any:
        found = await pipe.failures(integration_id)
        return found or None

    (recorded,) = await pipe.eventually(failure)
    assert recorded["reason"] == "transformation_error"
    assert "total.cents" in recorded["error"]
    assert recorded["outcome"] == "drop"


async def test_rule_changes_reach_the_workers(pipe: Pipeline, sink: Sink) -> None:
    key, integration_id = await hook(pipe, sink, {"trigger": 'event = "A"'})
    await send(pipe, key, [{"type": "track", "userId": "u", "event": e} for e in ("A", "B")])
    await sink.wait_for(lambda: len(sink.events()) == 1)
    r = await pipe.api.put(
        f"/v1/admin/integrations/{integration_id}",
        json={"config": {"url": sink.url + "/hook", "rules": {"trigger": 'event = "B"'}}},
    )
    assert r.status_code == 200, r.text

    async def only_b() -> bool:
        before = len(sink.events())
        await send(pipe, key, [{"type": "track", "userId": "u", "event": e} for e in ("A", "B")])
        await sink.wait_for(lambda: len(sink.events()) > before)
        return sink.events()[-1]["event"] == "B"

    await pipe.eventually(only_b, timeout=15)
