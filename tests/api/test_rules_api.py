"""Routing rules through the admin API: refused with field and position, stored in the
integration's config and audited, shown by preview, tried by /v1/admin/rules/evaluate."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import Api

HOOK = "https://hooks.example.com/in"


async def webhook(api: Api, rules: dict[str, Any] | None = None) -> dict[str, Any]:
    source = await api.make_source()
    config: dict[str, Any] = {"url": HOOK}
    if rules is not None:
        config["rules"] = rules
    return await api.make_integration(source["id"], type="webhook", config=config)


@pytest.mark.parametrize(
    ("rules", "field", "position", "words"),
    [
        ({"trigger": 'type = "track" and'}, "config.rules.trigger", 19, "end"),
        ({"trigger": "nope(type)"}, "config.rules.trigger", 1, "unknown function"),
        (
            {"filters": [{"if": 'event = "x" or ) ', "action": "drop"}]},
            "config.rules.filters.0.if",
            16,
            "unexpected",
        ),
        (
            {
                "filters": [
                    {
                        "if": {
                            "logical": "and",
                            "conditions": [
                                {"property": "a", "operator": "is about", "values": ["1"]}
                            ],
                        },
                        "action": "drop",
                    }
                ]
            },
            "config.rules.filters.0.if.conditions.0.operator",
            None,
            "unknown operator",
        ),
        ({"filters": [{"action": "explode"}]}, "config.rules.filters.0.action", None, "one of"),
        (
            {"filters": [{"action": "sample", "percent": 101}]},
            "config.rules.filters.0.percent",
            None,
            "0 to 100",
        ),
        (
            {"filters": [{"action": "allow_properties", "paths": ["userId"]}]},
            "config.rules.filters.0.paths.0",
            None,
            "inside an object",
        ),
        (
            {"transformation": {"mapping": {"properties.x": "concat(a,"}}},
            "config.rules.transformation.mapping.properties.x",
            10,
            "end",
        ),
        ({"surprise": 1}, "config.rules.surprise", None, "not a known field"),
    ],
)
async def test_invalid_rules_are_a_422_with_field_and_position(
    api: Api, rules: dict[str, Any], field: str, position: int | None, words: str
) -> None:
    source = await api.make_source()
    r = await api.post(
        "/v1/admin/integrations",
        json={
            "source_id": source["id"],
            "type": "webhook",
            "name": "Hook",
            "config": {"url": HOOK, "rules": rules},
        },
    )
    assert r.status_code == 422, r.text
    detail = r.json()["error"]["details"][0]
    assert detail["field"] == field
    assert words in detail["message"]
    assert detail.get("position") == position
    # The same on update.
    created = await webhook(api)
    r = await api.put(
        f"/v1/admin/integrations/{created['id']}", json={"config": {"url": HOOK, "rules": rules}}
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == field


async def test_rules_are_stored_in_the_config_and_audited_with_diffs(api: Api) -> None:
    created = await webhook(api, {"trigger": 'type = "track"'})
    assert created["config"]["rules"] == {"trigger": 'type = "track"'}
    new_rules = {
        "trigger": 'type = "track" and event = "Order Completed"',
        "filters": [{"if": "properties.total < 10", "action": "drop"}],
    }
    r = await api.put(
        f"/v1/admin/integrations/{created['id']}",
        json={"config": {"url": HOOK, "rules": new_rules}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["config"]["rules"] == new_rules
    entries = (await api.get("/v1/admin/audit-log", params={"resource_id": created["id"]})).json()[
        "data"
    ]
    changes = entries[0]["changes"]
    assert changes["config.rules.trigger"] == {
        "old": 'type = "track"',
        "new": 'type = "track" and event = "Order Completed"',
    }
    assert changes["config.rules.filters"]["new"] == new_rules["filters"]
    assert "config.url" not in changes


async def test_preview_shows_the_rule_that_matched_and_the_event_after_rules(api: Api) -> None:
    created = await webhook(
        api,
        {
            "trigger": 'type = "track"',
            "filters": [
                {"if": 'event = "Debug"', "action": "drop"},
                {"action": "drop_properties", "paths": ["properties.secret"]},
            ],
            "transformation": {"mapping": {"properties.email": "lowercase(traits.email)"}},
        },
    )
    batch = [
        {"type": "page", "userId": "u1", "name": "Home"},
        {"type": "track", "userId": "u1", "event": "Debug"},
        {
            "type": "track",
            "userId": "u1",
            "event": "Paid",
            "properties": {"secret": "s", "total": 5},
            "traits": {"email": "Ada@Example.COM"},
        },
    ]
    r = await api.post(f"/v1/admin/integrations/{created['id']}/preview", json={"batch": batch})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["filtered"] == [
        {"index": 0, "reason": "trigger", "rule": "trigger"},
        {"index": 1, "reason": "filter", "rule": "filters.0"},
    ]
    rules = {entry["index"]: entry for entry in body["rules"]}
    assert rules[0]["delivered"] is False and rules[0]["matched"] == []
    assert rules[1]["matched"] == ["trigger", "filters.0"]
    after = rules[2]["events"][0]
    assert rules[2]["matched"] == ["trigger", "filters.1", "transformation"]
    assert after["properties"] == {"total": 5, "email": "ada@example.com"}
    (request,) = body["requests"]
    assert request["event_indices"] == [2]
    assert request["body"]["properties"] == {"total": 5, "email": "ada@example.com"}


async def test_evaluate_returns_results_and_saves_nothing(api: Api) -> None:
    before = (await api.get("/v1/admin/audit-log")).json()["data"]
    r = await api.post(
        "/v1/admin/rules/evaluate",
        json={
            "rules": {
                "trigger": {
                    "logical": "and",
                    "conditions": [
                        {"property": "type", "operator": "is", "values": ["track"]},
                        {
                            "property": "properties.total",
                            "operator": "is greater than",
                            "values": ["100"],
                        },
                    ],
                },
                "transformation": {
                    "mapping": {
                        "properties.label": '"Order {{properties.order_id}}"',
                        "properties.value": "to_number(properties.total)",
                    }
                },
            },
            "events": [
                {"type": "track", "properties": {"total": 150, "order_id": "o-1"}},
                {"type": "track", "properties": {"total": 50}},
            ],
        },
    )
    assert r.status_code == 200, r.text
    first, second = r.json()["results"]
    assert first["delivered"] is True
    assert first["events"][0]["properties"] == {
        "total": 150,
        "order_id": "o-1",
        "label": "Order o-1",
        "value": 150,
    }
    assert second == {
        "index": 1,
        "delivered": False,
        "matched": [],
        "reason": "trigger",
        "rule": "trigger",
    }
    assert (await api.get("/v1/admin/audit-log")).json()["data"] == before


async def test_evaluate_refuses_invalid_rules_with_field_and_position(api: Api) -> None:
    r = await api.post(
        "/v1/admin/rules/evaluate",
        json={"rules": {"trigger": "type = "}, "events": [{"type": "track"}]},
    )
    assert r.status_code == 422
    detail = r.json()["error"]["details"][0]
    assert detail["field"] == "rules.trigger"
    assert detail["position"] == 8


async def test_evaluate_needs_an_editor(api: Api) -> None:
    viewer = await api.make_token("viewer")
    r = await api.post(
        "/v1/admin/rules/evaluate",
        token=viewer,
        json={"rules": {"trigger": "true"}, "events": [{"type": "track"}]},
    )
    assert r.status_code == 403


@pytest.mark.parametrize(
    ("source", "position", "words"),
    [
        ("function transform(e) {\n  return e.;\n}", 36, "SyntaxError"),
        ("function other(e) { return e; }", None, "transform(event)"),
        ("function transform(e) { while (true) {} }", None, "time limit"),
        ("function transform(e) { return fetch('http://127.0.0.1/'); }", None, "ReferenceError"),
    ],
)
async def test_functions_are_compiled_and_dry_run_on_save(
    api: Api, source: str, position: int | None, words: str
) -> None:
    source_row = await api.make_source()
    rules = {"transformation": {"function": {"language": "javascript", "source": source}}}
    r = await api.post(
        "/v1/admin/integrations",
        json={
            "source_id": source_row["id"],
            "type": "webhook",
            "name": "Hook",
            "config": {"url": HOOK, "rules": rules},
        },
    )
    assert r.status_code == 422, r.text
    detail = r.json()["error"]["details"][0]
    assert detail["field"] == "config.rules.transformation.function.source"
    assert words in detail["message"]
    assert detail.get("position") == position


async def test_evaluate_runs_a_function(api: Api) -> None:
    source = """
    function transform(event) {
      if (event.event === "Skip") return null;
      return [event, {...event, event: event.event + " (copy)"}];
    }
    """
    r = await api.post(
        "/v1/admin/rules/evaluate",
        json={
            "rules": {"transformation": {"function": {"language": "javascript", "source": source}}},
            "events": [{"type": "track", "event": "A"}, {"type": "track", "event": "Skip"}],
        },
    )
    assert r.status_code == 200, r.text
    first, second = r.json()["results"]
    assert [e["event"] for e in first["events"]] == ["A", "A (copy)"]
    assert second["reason"] == "transformation"
