"""One poison event never fails its request, and no input makes ingest or preview answer 5xx
(issue 9 item 2). Embedded shape only: this is about parsing, not storage."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from eventrelay.settings import Settings
from tests.support.examples import valid_configs
from tests.support.pipeline import Pipeline, basic, running_pipeline


def nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.fixture
def embedded(tmp_path: Path, sqlite_template: Path) -> Settings:
    root = tmp_path
    shutil.copy(sqlite_template, root / "eventrelay.db")
    return Settings(
        data_dir=root / "data",
        database_url=f"sqlite:///{root / 'eventrelay.db'}",
        secret_key=Fernet.generate_key().decode(),
        allow_private_targets=True,
    )


@pytest.fixture
async def world(embedded: Settings) -> AsyncIterator[tuple[Pipeline, str, str]]:
    async with running_pipeline(embedded) as pipe:
        src = await pipe.api.make_source()
        hook = await pipe.api.make_integration(
            src["id"], type="webhook", config=valid_configs()["webhook"], enabled=False
        )
        yield pipe, src["write_key"], hook["id"]


def refused_count(endpoint: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "eventrelay_ingest_requests_total", {"endpoint": endpoint, "status": status}
    )
    return value or 0.0


async def post(pipe: Pipeline, path: str, key: str, body: Any) -> httpx.Response:
    headers = {**basic(key), "Content-Type": "application/json"}
    return await pipe.api.client.post(path, content=_encode(body, False), headers=headers)


GOOD = {"type": "track", "userId": "u", "event": "good"}


@pytest.mark.parametrize(
    ("poison", "field", "message"),
    [
        ({**GOOD, "properties": nested(300)}, "batch.1", "levels deep"),
        (
            {**GOOD, "timestamp": "0001-01-01T00:00:00Z", "sentAt": "9999-12-31T00:00:00Z"},
            "batch.1.timestamp",
            "clock skew",
        ),
        ({**GOOD, "timestamp": "0001-01-01T00:00:00+01:00"}, "batch.1.timestamp", "ISO 8601"),
        ({**GOOD, "event": "lone \ud800"}, "batch.1", "lone surrogate"),
        ({**GOOD, "type": ["track"]}, "batch.1.type", "must be one of"),
        ({**GOOD, "type": {"a": 1}}, "batch.1.type", "must be one of"),
    ],
)
async def test_a_poison_event_is_rejected_alone(
    world: tuple[Pipeline, str, str], poison: dict[str, Any], field: str, message: str
) -> None:
    pipe, key, _ = world
    before = refused_count("batch", "200")
    r = await post(pipe, "/v1/batch", key, {"batch": [GOOD, poison, GOOD]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 2
    [rejected] = body["rejected"]
    assert rejected["index"] == 1 and rejected["field"] == field
    assert message in rejected["message"]
    assert refused_count("batch", "200") == before + 1
    # Alone on a single-event endpoint it is a counted 400, not a 500.
    before = refused_count("track", "400")
    single = {k: v for k, v in poison.items() if k != "type"} | {"type": "track"}
    if single == {**GOOD, "type": "track"}:
        return  # the poison was its type, which the endpoint decides
    r = await post(pipe, "/v1/track", key, single)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "invalid_event"
    assert refused_count("track", "400") == before + 1


async def test_a_skewed_batch_sent_at_is_ignored_not_fatal(
    world: tuple[Pipeline, str, str],
) -> None:
    pipe, key, _ = world
    for sent_at in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "nope"):
        r = await pipe.ingest(
            "/v1/batch",
            key,
            {"batch": [{**GOOD, "timestamp": "2026-01-01T00:00:00Z"}], "sentAt": sent_at},
        )
        assert r.status_code in (200, 400), r.text


# Adversarial JSON: deep nesting, huge and tiny numbers, unicode (lone surrogates arrive as
# escapes), dates at the extremes, wrong types where the spec has strings or objects.
_dates = st.sampled_from(
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59.999Z",
        "9999-12-31T23:59:59-14:00",
        "1970-01-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "",
        "T",
    ]
)
_numbers = st.one_of(
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([10**400, -(10**400)]),
)
_leaves = st.one_of(st.none(), st.booleans(), _numbers, st.text(max_size=20), _dates)
_values = st.recursive(
    _leaves,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=20,
)
_fields = st.sampled_from(
    [
        "type",
        "userId",
        "anonymousId",
        "event",
        "messageId",
        "timestamp",
        "sentAt",
        "originalTimestamp",
        "context",
        "properties",
        "traits",
        "integrations",
        "previousId",
        "groupId",
        "name",
        "category",
    ]
)
_events = st.dictionaries(
    _fields, st.one_of(_values, _dates, st.just(nested(260))), max_size=8
).map(lambda e: {"type": "track", "userId": "u", "event": "x", **e})


def _encode(payload: Any, surrogate: bool) -> bytes:
    """Python's json writes integers of any size as digits (orjson would refuse), and a lone
    surrogate can only arrive as an escape."""
    text = json.dumps(payload)
    if surrogate:
        text = text.replace('"x"', '"\\ud800x"', 1)
    return text.encode()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batch=st.lists(_events, min_size=1, max_size=4),
    sent_at=st.one_of(st.none(), _dates),
    surrogate=st.booleans(),
    depth=st.sampled_from([0, 0, 0, 255, 1100]),
)
async def test_adversarial_json_never_gets_a_5xx(
    world: tuple[Pipeline, str, str],
    batch: list[dict[str, Any]],
    sent_at: str | None,
    surrogate: bool,
    depth: int,
) -> None:
    pipe, key, hook = world
    payload: dict[str, Any] = {"batch": batch, "sentAt": sent_at}
    if depth:
        payload["batch"][0]["context"] = nested(depth)
    body = _encode(payload, surrogate)
    headers = {**basic(key), "Content-Type": "application/json"}
    r = await pipe.api.client.post("/v1/batch", content=body, headers=headers)
    assert r.status_code < 500, r.text
    assert r.status_code in (200, 400, 413), r.text
    r = await pipe.api.client.post(
        "/v1/track", content=_encode(batch[0], surrogate), headers=headers
    )
    assert r.status_code < 500, r.text
    r = await pipe.api.post(
        f"/v1/admin/integrations/{hook}/preview",
        content=_encode({"batch": batch}, surrogate),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code < 500, r.text
