"""Every vendor's test vectors: tests/destinations/vectors/<type>/<case>.json.

A case holds integration settings, input events and a frozen clock, and expects either the
exact request(s) built (method, URL, headers, JSON body or raw body) and skipped events, or,
given a vendor response, the per-event outcomes. Format:

{
  "description": "...",
  "settings": {...},                         # the integration's config
  "now": "2026-11-25T12:00:00Z",             # optional frozen clock
  "context": {"access_token": "...", "test_mode": false},   # optional
  "events": [{...}],                          # normalised Segment events
  "expect": {"requests": [{"method", "url", "headers"?, "json" | "body", "event_indices"?}],
             "skipped"?: {"0": "unmapped"}},
  # or, to check classification of a response to the first built request:
  "response": {"status": 200, "headers"?: {}, "json" | "body": ...},
  "expect": {"outcomes": [{"kind": "success"}, {"kind": "drop", "reason": "..."}]}
}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from eventrelay.destinations import registry
from eventrelay.destinations.base import BuildContext, EventRecord, HttpResponse
from eventrelay.timeutil import parse_iso

VECTORS = Path(__file__).parent / "vectors"
CASES = sorted(VECTORS.glob("*/*.json"))
DEFAULT_NOW = "2026-11-25T12:00:00Z"


def _lower(headers: dict[str, Any]) -> dict[str, str]:
    return {k.lower(): str(v) for k, v in headers.items()}


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_vector(path: Path) -> None:
    case = json.loads(path.read_text())
    destination = registry.get(path.parent.name)
    assert destination is not None, f"no destination {path.parent.name}"
    settings = destination.Settings.model_validate(case["settings"])
    context = case.get("context", {})
    ctx = BuildContext(
        now=parse_iso(case.get("now", DEFAULT_NOW)),
        access_token=context.get("access_token"),
        test_mode=context.get("test_mode", False),
    )
    records = [EventRecord.from_event(event) for event in case["events"]]
    built = destination.build(records, settings, ctx)
    expect = case["expect"]

    if "requests" in expect:
        assert len(built.requests) == len(expect["requests"]), "number of requests"
        for request, wanted in zip(built.requests, expect["requests"], strict=True):
            assert request.method == wanted["method"]
            assert request.url == wanted["url"]
            if "headers" in wanted:
                assert _lower(dict(request.headers)) == _lower(wanted["headers"])
            if "json" in wanted:
                assert request.body is not None
                assert orjson.loads(request.body) == wanted["json"]
            if "body" in wanted:
                assert (request.body or b"").decode() == wanted["body"]
            if "event_indices" in wanted:
                assert list(request.event_indices) == wanted["event_indices"]
        skipped = {str(k): v for k, v in built.skipped.items()}
        assert skipped == expect.get("skipped", {})

    if "outcomes" in expect:
        response = case["response"]
        body = response.get("body")
        if "json" in response:
            body = json.dumps(response["json"])
        request = built.requests[case.get("request_index", 0)]
        outcomes = destination.classify(
            request,
            HttpResponse(response["status"], response.get("headers", {}), (body or "").encode()),
        )
        wanted_outcomes = expect["outcomes"]
        if len(outcomes) == 1 and len(wanted_outcomes) > 1:
            outcomes = outcomes * len(wanted_outcomes)  # one outcome for the whole request
        assert len(outcomes) == len(wanted_outcomes), "one outcome per event"
        for index, (outcome, wanted) in enumerate(zip(outcomes, wanted_outcomes, strict=True)):
            assert outcome.kind.value == wanted["kind"], f"event {index}: {outcome}"
            if "reason" in wanted:
                assert outcome.reason == wanted["reason"], f"event {index}: {outcome}"
            if "retry_after" in wanted:
                assert outcome.retry_after == wanted["retry_after"], f"event {index}: {outcome}"


def test_every_delivering_type_has_vectors() -> None:
    for type_, destination in registry.DESTINATIONS.items():
        # File-loading types (warehouses, S3) build no requests: their end-to-end tests cover them.
        if destination.delivers and not getattr(destination, "loads_files", False):
            assert list((VECTORS / type_).glob("*.json")), f"{type_} has no vectors"
