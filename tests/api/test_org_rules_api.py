"""Organisation rules through the admin API: read by viewers, written by admins, refused
with field and position, audited with a diff, and shown by an integration's preview."""

from __future__ import annotations

import hashlib
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


async def test_rules_are_tried_on_samples_as_ingest_would_apply_them(api: Api) -> None:
    """Before saving: each sample normalised like a batch item, then dropped (and by which
    condition), or kept as it would be stored; nothing saved, refusals in words."""
    samples = [
        {"type": "track", "event": "A", "userId": "u1", "context": {"userAgent": "GoodBot/1"}},
        {"type": "track", "event": "B", "userId": "u1", "properties": {"email": "a@b.c", "n": 1}},
        {"type": "track", "userId": "u1"},  # no event name: ingest refuses it
    ]
    viewer, editor = await api.make_token("viewer"), await api.make_token("editor")
    body = {"rules": RULES, "events": samples}
    assert (await api.post(PATH + "/evaluate", viewer, json=body)).status_code == 403
    r = await api.post(PATH + "/evaluate", editor, json=body)
    assert r.status_code == 200, r.text
    dropped, kept, refused = r.json()["results"]
    assert dropped == {"index": 0, "delivered": False, "reason": "org_rule", "rule": "drop.0"}
    assert kept["delivered"] is True
    [event] = kept["events"]
    assert event["properties"] == {"n": 1}  # redacted
    assert event["userId"] == hashlib.sha256(b"u1").hexdigest()
    assert event["messageId"] and event["receivedAt"]  # filled in as at ingest
    assert refused["delivered"] is False and refused["reason"] == "invalid_event"
    assert refused["error"].startswith("event:")
    assert (await api.get(PATH)).json() == EMPTY  # nothing saved

    r = await api.post(PATH + "/evaluate", editor, json={"rules": {"drop": ["("]}, "events": [{}]})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "rules.drop.0"


@pytest.mark.parametrize("path", [PATH + "/evaluate", "/v1/admin/rules/evaluate"])
async def test_a_sample_no_one_could_store_is_refused_in_words(api: Api, path: str) -> None:
    """A lone surrogate parses (`"\\ud800"`) but cannot be written back as JSON: ingest
    refuses such an event, and so does trying rules on it (not a 500)."""
    body = b'{"rules": {}, "events": [{"type": "track", "event": "E", "userId": "u",'
    body += b' "properties": {"bad": "\\ud800"}}]}'
    r = await api.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    [result] = r.json()["results"]
    assert result["reason"] == "invalid_event"
    assert result["error"] == "event: contains a string with a lone surrogate"
