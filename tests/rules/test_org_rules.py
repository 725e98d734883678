"""Organisation rules (rules/org.py): drop conditions in both forms, redaction and hashing of
nested paths, what exactly is hashed, and errors with field and position."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest

from eventrelay.rules import RulesInvalid, compile_org_rules

EVENT: dict[str, Any] = {
    "type": "track",
    "messageId": "m-1",
    "userId": "user-42",
    "event": "Order Completed",
    "properties": {"email": "ada@example.com", "order_ref": 1234, "total": 59.9, "vip": True},
    "context": {"userAgent": "Googlebot/2.1", "traits": {"phone": "+33 6", "name": "Ada"}},
}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_no_rules_is_empty_and_normalised() -> None:
    for raw in (None, {}, {"drop": [], "redact": [], "hash": []}):
        rules = compile_org_rules(raw)
        assert rules.empty
        assert rules.raw == {"drop": [], "redact": [], "hash": []}


@pytest.mark.parametrize(
    "condition",
    [
        'match(lowercase(context.userAgent), "*bot*")',
        {
            "logical": "or",
            "conditions": [
                {"property": "context.userAgent", "operator": "contains", "values": ["bot"]}
            ],
        },
    ],
)
def test_drop_in_fql_and_structured_form(condition: Any) -> None:
    rules = compile_org_rules({"drop": ['context.ip = "10.0.0.1"', condition]})
    assert rules.apply(EVENT) == (None, "drop.1")
    human = {**EVENT, "context": {"userAgent": "Mozilla/5.0"}}
    kept, rule = rules.apply(human)
    assert rule is None and kept is human  # nothing to change: the very same object


def test_redact_and_hash_nested_paths_without_touching_the_input() -> None:
    before = copy.deepcopy(EVENT)
    rules = compile_org_rules(
        {
            "redact": ["properties.email", "context.traits.phone", "properties.absent"],
            "hash": ["userId", "properties.order_ref", "properties.total", "properties.vip"],
        }
    )
    out, rule = rules.apply(EVENT)
    assert rule is None and out is not None
    assert before == EVENT  # shared objects (a batch's context) are never modified
    assert out["userId"] == sha("user-42")
    # Numbers are hashed as their JSON text; booleans are left as they are.
    assert out["properties"] == {"order_ref": sha("1234"), "total": sha("59.9"), "vip": True}
    assert out["context"]["traits"] == {"name": "Ada"}
    assert out["context"]["userAgent"] == "Googlebot/2.1"
    assert out["messageId"] == "m-1"


def test_hash_removes_objects_and_keeps_nulls() -> None:
    rules = compile_org_rules({"hash": ["traits.address", "traits.phone"]})
    out = rules.scrub({"type": "identify", "traits": {"address": {"city": "Paris"}, "phone": None}})
    assert out["traits"] == {"phone": None}


def test_drop_sees_the_event_before_redaction() -> None:
    rules = compile_org_rules(
        {"drop": ['properties.email = "ada@example.com"'], "redact": ["properties.email"]}
    )
    assert rules.apply(EVENT) == (None, "drop.0")


@pytest.mark.parametrize(
    ("raw", "field", "position"),
    [
        ({"drop": ['type = "track" and']}, "drop.0", 19),
        ({"drop": ["ok = 1", "nope(type)"]}, "drop.1", 1),
        (
            {
                "drop": [
                    {"logical": "and", "conditions": [{"property": "a", "operator": "is about"}]}
                ]
            },
            "drop.0.conditions.0.operator",
            None,
        ),
        ({"redact": ["properties.", "x"]}, "redact.0", None),
        ({"hash": ["userId", "messageId"]}, "hash.1", None),
        ({"redact": "properties.email"}, "redact", None),
        ({"drop": "type = 1"}, "drop", None),
        ({"allow": []}, "allow", None),
    ],
)
def test_errors_name_the_field_and_position(raw: Any, field: str, position: int | None) -> None:
    with pytest.raises(RulesInvalid) as caught:
        compile_org_rules(raw)
    error = caught.value.errors[0]
    assert (error.field, error.position) == (field, position)
