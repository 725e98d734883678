"""Organisation rules through the admin API: read by viewers, written by admins, refused
with field and position, audited with a diff, and shown by an integration's preview."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import Api

PATH = "/v1/admin/organization/rules"
EMPTY = {"drop": [], "redact": [], "hash": []}
RULES: dict[str, Any] = {
    "drop": ['match(lowercase(context.userAgent), "*bot*")'],
    "redact": ["properties.email"],
    "hash": ["userId"],
}


async def test_rules_are_read_by_viewers_and_written_by_admins(api: Api) -> None:
    viewer = await api.make_token("viewer")
    editor = await api.make_token("editor")
    admin = await api.make_token("admin")
    r = await api.get(PATH, viewer)
    assert r.status_code == 200 and r.json() == EMPTY
    for token in (viewer, editor):
        r = await api.put(PATH, token, json=RULES)
        assert r.status_code == 403, r.text
    r = await api.put(PATH, admin, json=RULES)
    assert r.status_code == 200, r.text
    assert r.json() == RULES
    assert (await api.get(PATH, viewer)).json() == RULES
    # Clearing them stores none.
    assert (await api.put(PATH, json={})).json() == EMPTY
    assert (await api.get(PATH)).json() == EMPTY


@pytest.mark.parametrize(
    ("rules", "field", "position", "words"),
    [
        ({"drop": ['type = "track" and']}, "drop.0", 19, "end"),
        ({"drop": ["type = 1", "nope(type)"]}, "drop.1", 1, "unknown function"),
        (
            {
                "drop": [
                    {
                        "logical": "and",
                        "conditions": [{"property": "a", "operator": "is about", "values": []}],
                    }
                ]
            },
            "drop.0.conditions.0.operator",
            None,
            "unknown operator",
        ),
        ({"redact": ["properties..email"]}, "redact.0", None, "empty segment"),
        ({"hash": ["messageId"]}, "hash.0", None, "cannot be changed"),
    ],
)
async def test_invalid_rules_are_a_422_with_field_and_position(
    api: Api, rules: dict[str, Any], field: str, position: int | None, words: str
) -> None:
    r = await api.put(PATH, json=rules)
    assert r.status_code == 422, r.text
    detail = r.json()["error"]["details"][0]
    assert detail["field"] == field
    assert words in detail["message"]
    assert detail.get("position") == position
    assert (await api.get(PATH)).json() == EMPTY  # nothing saved


async def test_changes_are_audited_with_a_diff(api: Api) -> None:
    assert (await api.put(PATH, json=RULES)).status_code == 200
    changed = {**RULES, "hash": ["userId", "properties.order_ref"]}
    assert (await api.put(PATH, json=changed)).status_code == 200
    assert (await api.put(PATH, json=changed)).status_code == 200  # no change, no entry
    entries = (
        await api.get("/v1/admin/audit-log", params={"resource_type": "organization"})
    ).json()["data"]
    entries = [e for e in entries if e["action"] == "organization.rules_updated"]
    assert len(entries) == 2
    assert entries[0]["changes"] == {
        "rules.hash": {"old": ["userId"], "new": ["userId", "properties.order_ref"]}
    }
    assert entries[1]["changes"]["rules.drop"] == {"old": [], "new": RULES["drop"]}


async def test_preview_applies_the_organisation_rules_first(api: Api) -> None:
    source = await api.make_source()
    hook = await api.make_integration(
        source["id"], type="webhook", config={"url": "https://hooks.example.com/in"}
    )
    assert (await api.put(PATH, json=RULES)).status_code == 200
    batch = [
        {"type": "track", "userId": "u1", "event": "Crawl", "context": {"userAgent": "AdsBot"}},
        {"type": "track", "userId": "u1", "event": "Paid", "properties": {"email": "a@b.c"}},
    ]
    r = await api.post(f"/v1/admin/integrations/{hook['id']}/preview", json={"batch": batch})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["filtered"] == [{"index": 0, "reason": "org_rule", "rule": "drop.0"}]
    (request,) = body["requests"]
    assert request["event_indices"] == [1]
    sent = request["body"]
    assert "email" not in sent.get("properties", {})
    assert sent["userId"] != "u1" and len(sent["userId"]) == 64
