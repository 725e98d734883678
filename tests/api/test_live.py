"""GET /v1/admin/sources/{id}/live: accepted events with their routing, as Server-Sent Events,
over a real socket, in both shapes (in scale-out: listening on one API process while the events
arrive at another, fanned in over NATS core)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventrelay.app import create_app
from eventrelay.commands.tail import describe, sse_messages
from eventrelay.queue.base import Message
from eventrelay.routing import tap as tap_module
from eventrelay.routing.directory import Route, SourceEntry
from eventrelay.routing.tap import Tap
from eventrelay.runtime import Runtime
from eventrelay.settings import Settings
from tests.support.api import running_api
from tests.support.examples import valid_configs
from tests.support.live import eventually, follow
from tests.support.server import serve_in_thread
from tests.support.sink import Sink


@dataclass
class Node:
    url: str
    runtime: Runtime


@contextmanager
def node(settings: Settings, workers: bool = True) -> Iterator[Node]:
    rt = Runtime.create(settings)
    with serve_in_thread(create_app(rt, bootstrap_owner=True, workers=workers)) as url:
        yield Node(url, rt)


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


async def admin(url: str, token: str, method: str, path: str, body: Any = None) -> Any:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        r = await client.request(
            method, path, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code < 300, r.text
        return r.json()


async def test_live_view_shows_each_event_with_its_routing(settings: Settings) -> None:
    """The listener is on node A while the events arrive at node B: in scale-out, two API
    processes sharing NATS; embedded, two processes sharing one data directory (B only
    publishes to the queue A consumes, as `serve --processes 2` does)."""
    with node(settings) as a, node(settings, workers=False) as b:
        token = settings.owner_token_file.read_text().strip()
        source = await admin(a.url, token, "POST", "/v1/admin/sources", {"name": "Web"})
        hook = await admin(
            a.url,
            token,
            "POST",
            "/v1/admin/integrations",
            {
                "source_id": source["id"],
                "type": "webhook",
                "name": "Hook",
                "enabled": False,
                "config": valid_configs()["webhook"],
            },
        )
        ga4 = await admin(
            a.url,
            token,
            "POST",
            "/v1/admin/integrations",
            {
                "source_id": source["id"],
                "type": "ga4",
                "name": "GA4",
                "config": valid_configs()["ga4"],
            },
        )
        async with follow(a.url, source["id"], token) as follower:
            assert follower.status == 200
            [ready] = [d for k, d in follower.messages if k == "ready"]
            assert {i["name"] for i in ready["integrations"]} == {"Hook", "GA4"}
            async with httpx.AsyncClient(base_url=b.url, timeout=10) as ingest:

                async def send_until_seen() -> list[Any]:
                    # Node B learns of the source (config bus) and of the listener (a lease)
                    # within moments.
                    for attempt in range(100):
                        body = {"userId": "u1", "event": f"Order {attempt}"}
                        r = await ingest.post(
                            "/v1/track", json=body, headers=basic(source["write_key"])
                        )
                        if r.status_code == 401:  # B has not heard of the source yet
                            await asyncio.sleep(0.1)
                            continue
                        assert r.status_code == 200, r.text
                        with contextlib.suppress(TimeoutError):
                            # (once B also knows both integrations)
                            return await follower.wait_for(
                                lambda d: len(d["routing"]) == 2, timeout=0.3
                            )
                    raise AssertionError("no event reached the live view")

                [entry, *_] = await send_until_seen()
        assert entry["source_id"] == source["id"]
        assert entry["type"] == "track" and entry["event"]["userId"] == "u1"
        decisions = {d["integration_id"]: d for d in entry["routing"]}
        assert decisions[hook["id"]]["decision"] == "filtered"
        assert decisions[hook["id"]]["reason"] == "disabled"
        assert decisions[ga4["id"]] == {
            "integration_id": ga4["id"],
            "name": "GA4",
            "type": "ga4",
            "decision": "filtered",
            "reason": "consent",
        }
        assert "writeKey" not in json.dumps(entry)
        line = describe(entry)
        assert "GA4: filtered (consent)" in line and "Hook: filtered (disabled)" in line
        # The stream is gone: every node stops watching the source (lease withdrawn).
        for n in (a, b):
            assert n.runtime.tap is not None
            for _ in range(100):
                if not n.runtime.tap.watched:
                    break
                await asyncio.sleep(0.05)
            assert n.runtime.tap.watched == frozenset()


async def test_live_view_needs_the_editor_role_and_a_source_of_the_org(settings: Settings) -> None:
    with node(settings) as a:
        token = settings.owner_token_file.read_text().strip()
        source = await admin(a.url, token, "POST", "/v1/admin/sources", {"name": "Web"})
        viewer = (
            await admin(a.url, token, "POST", "/v1/admin/tokens", {"name": "v", "role": "viewer"})
        )["token"]
        async with httpx.AsyncClient(base_url=a.url, timeout=10) as client:
            path = f"/v1/admin/sources/{source['id']}/live"
            r = await client.get(path, headers={"Authorization": f"Bearer {viewer}"})
            assert r.status_code == 403
            assert r.json()["error"]["code"] == "forbidden"
            r = await client.get(
                "/v1/admin/sources/src_nope/live", headers={"Authorization": f"Bearer {token}"}
            )
            assert r.status_code == 404
            r = await client.get(path)
            assert r.status_code == 401


def _source(routes: tuple[Route, ...] = ()) -> SourceEntry:
    return SourceEntry("src_1", "org_1", "Web", "deny", ("*",), routes)


def _events(count: int) -> list[Message]:
    out = []
    for i in range(count):
        event = {"type": "track", "event": "E", "messageId": f"m{i}", "userId": "u"}
        out.append(Message(f"m{i}", json.dumps(event).encode()))
    return out


async def test_nobody_listening_costs_ingest_a_set_lookup_and_nothing_is_kept() -> None:
    tap = Tap()
    await tap.start()
    try:
        assert tap.watched == frozenset()
        listener = await tap.listen("src_1")
        assert tap.watched == frozenset({"src_1"})
        await tap.unlisten(listener)
        assert tap.watched == frozenset()
    finally:
        await tap.close()


async def test_the_view_samples_instead_of_falling_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tap_module, "LISTENER_BUFFER", 50)
    route = Route("int_1", "webhook", "Webhook", ("webhook",), True, True, ())
    tap = Tap()
    await tap.start()
    try:
        listener = await tap.listen("src_1")
        tap.offer(_source((route,)), _events(1000))  # one large batch, far over the rate
        received: list[bytes] = []
        skipped = 0
        for _ in range(200):  # skip counts are passed on once a second
            entry = await listener.next(timeout=0.1)
            if entry is not None:
                received.append(entry)
            skipped += listener.take_skipped()
            if len(received) + skipped == 1000:
                break
        assert 0 < len(received) <= 50  # bounded by the listener's buffer
        assert len(received) + skipped == 1000  # everything else is counted, not lost
        assert json.loads(received[0])["routing"] == [
            {"integration_id": "int_1", "type": "webhook", "decision": "queued"}
        ]
        await tap.unlisten(listener)
    finally:
        await tap.close()


@given(
    st.lists(
        st.tuples(
            st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=10),
            st.text(alphabet=st.characters(exclude_characters="\r\n"), max_size=40),
        ),
        max_size=5,
    )
)
def test_sse_parser_reads_back_what_the_server_writes(messages: list[tuple[str, str]]) -> None:
    wire = "retry: 2000\n\n" + "".join(
        f": keepalive\n\nevent: {kind}\ndata: {data}\n\n" for kind, data in messages
    )
    assert list(sse_messages(wire.split("\n"))) == messages


async def test_streams_end_when_the_server_stops(settings: Settings) -> None:
    """SIGINT/SIGTERM reach the tap, so an open stream does not hold the graceful shutdown; the
    hook is removed again when the app stops."""
    # A handler like uvicorn's (the test may run with SIGINT ignored, e.g. in the background).
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        before = signal.getsignal(signal.SIGINT)
        async with running_api(settings):
            assert signal.getsignal(signal.SIGINT) is not before  # chained in front of it
        assert signal.getsignal(signal.SIGINT) is before
    finally:
        signal.signal(signal.SIGINT, inherited)
    with node(settings) as a:
        token = settings.owner_token_file.read_text().strip()
        source = await admin(a.url, token, "POST", "/v1/admin/sources", {"name": "Web"})
        async with follow(a.url, source["id"], token) as follower:
            assert a.runtime.tap is not None
            a.runtime.tap.stop_listeners()  # what the signal handler calls
            await asyncio.wait_for(follower.ended.wait(), 10)


async def test_live_view_shows_delivery_outcomes_from_any_worker(settings: Settings) -> None:
    """Outcomes per event and integration reach a listener on node B from the workers of node
    A (over NATS core in scale-out, Unix sockets embedded): one integration delivers, one gets
    500 from the vendor (retried, with the status), one filters the event by consent."""
    sink = await Sink().start()
    sink.responder = lambda r: (500, {}, b'{"error":"boom"}') if r.path == "/fail" else None
    try:
        with node(settings) as a, node(settings, workers=False) as b:
            token = settings.owner_token_file.read_text().strip()
            source = await admin(a.url, token, "POST", "/v1/admin/sources", {"name": "Web"})

            async def hook(name: str, path: str, consent: list[str]) -> Any:
                config = valid_configs()["webhook"] | {"url": f"{sink.url}{path}"}
                body = {
                    "source_id": source["id"],
                    "type": "webhook",
                    "name": name,
                    "config": config,
                    "consent_categories": consent,
                }
                return await admin(a.url, token, "POST", "/v1/admin/integrations", body)

            ok = await hook("Good", "/ok", [])
            failing = await hook("Bad", "/fail", [])
            ads = await hook("Ads", "/ads", ["advertising"])
            async with (
                follow(b.url, source["id"], token) as follower,
                httpx.AsyncClient(base_url=b.url, timeout=10) as ingest,
            ):
                seen: list[Any] = []
                for attempt in range(100):
                    body = {
                        "userId": "u1",
                        "event": f"Order {attempt}",
                        "context": {"consent": {"categoryPreferences": {"Advertising": False}}},
                    }
                    r = await ingest.post(
                        "/v1/track", json=body, headers=basic(source["write_key"])
                    )
                    if r.status_code == 401:  # B has not heard of the source yet
                        await asyncio.sleep(0.1)
                        continue
                    assert r.status_code == 200, r.text
                    with contextlib.suppress(TimeoutError):
                        seen = await follower.wait_for(
                            lambda d: len(d["routing"]) == 3, timeout=0.3
                        )
                        break
                assert seen, "no event reached the live view"
                message_id = seen[0]["message_id"]
                wanted = {ok["id"], failing["id"], ads["id"]}
                await eventually(lambda: set(follower.outcomes(message_id)) == wanted, 20)
        outcomes = follower.outcomes(message_id)
        [delivered] = outcomes[ok["id"]]
        assert delivered["outcome"] == "delivered" and delivered["name"] == "Good"
        assert delivered["attempt"] == 1 and delivered["at"] > 0
        retried = outcomes[failing["id"]][0]
        assert retried["outcome"] == "retried" and retried["status"] == 500
        assert retried["name"] == "Bad" and retried["reason"]
        [filtered] = outcomes[ads["id"]]
        assert (filtered["outcome"], filtered["reason"]) == ("filtered", "consent")
        text = json.dumps(outcomes)
        assert "your_api_key" not in text and "Order" not in text  # no secrets, no bodies
    finally:
        await sink.close()


async def test_outcomes_cost_a_set_lookup_unwatched_and_are_sampled_watched() -> None:
    tap = Tap()
    await tap.start()
    try:
        built = 0

        def entries(count: int) -> Iterator[dict[str, Any]]:
            nonlocal built
            for i in range(count):
                built += 1
                yield {"message_id": f"m{i}", "integration_id": "int_1", "outcome": "delivered"}

        listener = await tap.listen("src_1")
        many = int(tap_module.OUTCOME_BURST) + 500
        tap.offer_outcomes("src_1", many, entries(many))
        assert built == int(tap_module.OUTCOME_BURST)  # those sampled out are never built
        entry = await listener.next(timeout=2)
        assert entry is not None
        data = json.loads(entry)
        assert data["source_id"] == "src_1" and len(data["outcomes"]) == built
        await eventually(lambda: listener.skipped_outcomes >= 500, 5)
        assert listener.take_skipped_outcomes() == 500
        await tap.unlisten(listener)
    finally:
        await tap.close()
