"""The official Python SDKs against every ingest error: they must report eventrelay's code and
message (top-level `code`/`message`, what their request.py reads) and give up on a 4xx at once
(their consumers retry only APIError 5xx/429 and other exceptions), not retry a 401 ten times."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient

from eventrelay.app import create_app
from eventrelay.runtime import Runtime
from eventrelay.settings import Settings
from tests.support.server import serve_in_thread

pytestmark = pytest.mark.slow


@pytest.fixture
def live(settings: Settings) -> Iterator[tuple[str, str]]:
    app = create_app(Runtime.create(settings), bootstrap_owner=True)
    with serve_in_thread(app) as base_url:
        yield base_url, settings.owner_token_file.read_text().strip()


async def write_key(base_url: str, token: str) -> str:
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=auth) as admin:
        source = (await admin.post("/v1/admin/sources", json={"name": "Backend"})).json()
    return str(source["write_key"])


def send(sdk: str, key: str, base_url: str, properties: dict[str, Any]) -> list[Any]:
    errors: list[Any] = []
    cls: Any = SegmentClient if sdk == "segment" else RudderClient
    # The background consumer, as applications use it; 2 retries at most, so a regression shows
    # as 3 requests instead of a test waiting out 10 backoffs.
    client = cls(key, host=base_url, max_retries=2, on_error=lambda e, b: errors.append(e))
    client.track(user_id="u-1", event="Order Completed", properties=properties)
    client.flush()
    client.join()
    return errors


def post_directly(sdk: str, key: str, base_url: str, properties: dict[str, Any]) -> list[Any]:
    """The SDKs refuse events over 32 KB before sending; a 413 can only reach their HTTP layer
    (request.post, what the consumer calls) with a batch built by hand."""
    from rudderstack.analytics import request as rudder_request
    from segment.analytics import request as segment_request

    module: Any = segment_request if sdk == "segment" else rudder_request
    event = {"type": "track", "userId": "u-1", "event": "Big", "properties": properties}
    try:
        module.post(key, base_url, batch=[event] * 20)
    except Exception as exc:
        return [exc]
    return []


def requests_seen(base_url: str) -> float:
    text = httpx.get(base_url + "/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('eventrelay_ingest_requests_total{endpoint="batch"')
        and 'status="200"' not in line
    )


@pytest.mark.parametrize("sdk", ["segment", "rudderstack"])
@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("unknown write key", 401, "unauthorized"),
        ("invalid event", 400, "invalid_event"),
        ("too large", 413, "payload_too_large"),
    ],
)
async def test_sdk_reports_the_ingest_error_and_does_not_retry(
    live: tuple[str, str], sdk: str, case: str, status: int, code: str
) -> None:
    base_url, token = live
    key = await write_key(base_url, token)
    properties: dict[str, Any] = {"revenue": 1}
    if case == "unknown write key":
        key = "wk_unknown"
    elif case == "invalid event":
        properties = {"deep": _nested(300)}  # a poison event: refused, never a 500
    before = requests_seen(base_url)
    if case == "too large":
        properties = {"blob": "x" * (30 * 1024)}  # 20 of them: over 500 KB
        errors = await asyncio.to_thread(post_directly, sdk, key, base_url, properties)
    else:
        errors = await asyncio.to_thread(send, sdk, key, base_url, properties)
    assert len(errors) == 1, errors
    error = errors[0]
    assert type(error).__name__ == "APIError"  # not KeyError('code')
    assert (error.status, error.code) == (status, code)
    assert error.message
    assert requests_seen(base_url) - before == 1  # one request: no retries


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value
