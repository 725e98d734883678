"""JavaScript transformation functions end to end through a real webhook receiver, in both
shapes: results (changed, several events, dropped), and a hostile function contained while
the server keeps serving and other integrations keep delivering."""

from __future__ import annotations

from typing import Any

from tests.support.pipeline import Pipeline
from tests.support.sink import Sink


def function(source: str) -> dict[str, Any]:
    return {"transformation": {"function": {"language": "javascript", "source": source}}}


async def send(pipe: Pipeline, key: str, events: list[dict[str, Any]]) -> None:
    r = await pipe.ingest("/v1/batch", key, {"batch": events})
    assert r.status_code == 200, r.text


async def counted(pipe: Pipeline, integration_id: str, total: int) -> dict[str, Any]:
    async def settled() -> dict[str, Any] | None:
        m = await pipe.metrics(integration_id)
        return m if m.get("successes", 0) + m.get("filtered", 0) >= total else None

    result: dict[str, Any] = await pipe.eventually(settled, timeout=20)
    return result


async def test_a_function_changes_splits_and_drops_events(pipe: Pipeline, sink: Sink) -> None:
    src = await pipe.api.make_source()
    rules = function(
        """
        function transform(event) {
          if (event.event === "Internal") return null;
          if (event.event === "Cart") {
            return event.properties.items.map((item) => ({
              ...event, event: "Product Added", properties: item,
            }));
          }
          const traits = (event.context && event.context.traits) || {};
          event.properties = {...event.properties, email: (traits.email || "").toLowerCase()};
          return event;
        }
        """
    )
    integration = await pipe.api.make_integration(
        src["id"], type="webhook", config={"url": sink.url + "/hook", "rules": rules}
    )
    await send(
        pipe,
        src["write_key"],
        [
            {
                "type": "track",
                "userId": "u1",
                "event": "Paid",
                "properties": {},
                "context": {"traits": {"email": "ADA@X.COM"}},
            },
            {"type": "track", "userId": "u1", "event": "Internal"},
            {
                "type": "track",
                "userId": "u1",
                "event": "Cart",
                "properties": {"items": [{"sku": "a"}, {"sku": "b"}]},
            },
        ],
    )
    m = await counted(pipe, integration["id"], 3)  # three queued events, each settled once
    assert m["filtered.transformation"] == 1
    await sink.wait_for(lambda: len(sink.events()) == 3)
    by_event = sorted(sink.events(), key=lambda e: (e["event"], str(e["properties"])))
    assert [e["event"] for e in by_event] == ["Paid", "Product Added", "Product Added"]
    assert by_event[0]["properties"] == {"email": "ada@x.com"}
    assert [e["properties"] for e in by_event[1:]] == [{"sku": "a"}, {"sku": "b"}]
    # Each event of a split has its own stable id; the queue's message is settled once.
    ids = {r.headers["webhook-id"] for r in sink.requests}
    assert len(ids) == 3
    assert m["successes"] == 2  # Paid, and Cart once for its two events


async def test_a_hostile_function_is_contained_and_the_server_keeps_serving(
    pipe: Pipeline, sink: Sink
) -> None:
    src = await pipe.api.make_source()
    hostile = await pipe.api.make_integration(
        src["id"],
        type="webhook",
        name="Hostile",
        config={
            "url": sink.url + "/hostile",
            "rules": function(
                """
                function transform(event) {
                  const attack = (event.properties || {}).attack;
                  if (attack === "loop") { while (true) {} }
                  if (attack === "memory") {
                    const a = []; while (true) { a.push(new Array(1 << 20).fill(1.5)); }
                  }
                  if (attack === "recursion") { const f = (n) => f(n + 1) + 1; f(0); }
                  if (attack === "network") { fetch("http://127.0.0.1:9/"); }
                  if (attack === "process") { require("child_process"); }
                  return event;
                }
                """
            ),
        },
    )
    plain = await pipe.api.make_integration(
        src["id"], type="webhook", name="Plain", config={"url": sink.url + "/plain"}
    )
    attacks = ["loop", "memory", "recursion", "network", "process"]
    await send(
        pipe,
        src["write_key"],
        [
            {"type": "track", "userId": "u1", "event": "E", "properties": {"attack": a}}
            for a in [*attacks, "none"]
        ],
    )
    # The server answers meanwhile, and the other integration delivers everything.
    r = await pipe.api.get("/healthz")
    assert r.status_code == 200
    await send(pipe, src["write_key"], [{"type": "track", "userId": "u2", "event": "After"}])
    await sink.wait_for(lambda: len([r for r in sink.requests if r.path == "/plain"]) == 7)
    m = await counted(pipe, hostile["id"], 7)
    assert m["filtered.transformation_error"] == len(attacks)
    assert m["successes"] == 2
    hostile_events = [r.json().get("properties") for r in sink.requests if r.path == "/hostile"]
    assert len(hostile_events) == 2 and {"attack": "none"} in hostile_events
    failures = await pipe.failures(hostile["id"])
    assert {f["reason"] for f in failures} == {"transformation_error"}
    errors = " ".join(f["error"] for f in failures)
    assert "limit" in errors and "RangeError" in errors and "ReferenceError" in errors
    assert (await pipe.integration(plain["id"]))["status"] == "active"
