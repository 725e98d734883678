"""Segment's analytics.js and RudderStack's JavaScript SDK v3, unchanged, in Debian's Chromium.

Each SDK comes from its npm package (tests/browser/package.json, installed by `make test` with
`npm ci`) and is served by a local page server; no request may leave this machine (every
request the page makes to anything but 127.0.0.1 is aborted and reported). Two ways per SDK:
- the stock snippet: analytics.js loads its settings from eventrelay
  (`/v1/projects/<writeKey>/settings`, `analytics._cdn` pointing at eventrelay); RudderStack
  loads its source config from eventrelay (`configUrl`);
- direct: analytics.js with `apiHost` and inline `cdnSettings`; RudderStack with
  `getSourceConfig` (no config request at all).
Every page sends identify, track, page and a burst of 200 tracks with batching on; every event
must reach a webhook sink through eventrelay with its page, campaign and user agent context,
and `context.ip` filled from the connection.

Playwright's Python package drives the existing Chromium (`executable_path`, no browser
download), so the test runs under pytest with the same real server and sink as the rest.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from cryptography.fernet import Fernet

from eventrelay.app import create_app
from eventrelay.runtime import Runtime
from eventrelay.settings import Settings
from tests.support.server import free_port, serve_in_thread
from tests.support.services import require
from tests.support.sink import Sink

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
MODULES = HERE / "node_modules"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As root Chromium needs --no-sandbox; the rest keeps it off the (closed) network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SEGMENT_STANDALONE = MODULES / "@segment/analytics-next/dist/umd/standalone.js"
SEGMENT_UMD = MODULES / "@segment/analytics-next/dist/umd/index.js"
# The bundled build carries RudderStack's plugins; the default build fetches them from its CDN.
RUDDER_UMD = MODULES / "@rudderstack/analytics-js/dist/npm/modern/bundled/umd/index.js"
CAMPAIGN = "utm_source=newsletter&utm_medium=email&utm_campaign=spring"
BURST = 200


def _require_browser() -> None:
    require(
        Path(CHROMIUM).exists(),
        "Chromium",
        "install it with: apt-get install -y chromium (make test does it as root)",
    )
    require(
        SEGMENT_STANDALONE.exists() and RUDDER_UMD.exists(),
        "the browser SDK packages",
        "install them with: cd tests/browser && npm ci (make test does it)",
    )
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        require(False, "playwright (Python)", "pip install -e '.[test]'")


@pytest.fixture(scope="module")
def eventrelay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    root = tmp_path_factory.mktemp("browser")
    settings = Settings(
        data_dir=root / "data",
        database_url=f"sqlite:///{root / 'eventrelay.db'}",
        secret_key=Fernet.generate_key().decode(),
        allow_private_targets=True,
        retry_base_seconds=0.05,
    )
    from eventrelay.store import migrate

    migrate.upgrade(settings.resolved_database_url)
    app = create_app(Runtime.create(settings), bootstrap_owner=True)
    with serve_in_thread(app) as base_url:
        yield base_url, settings.owner_token_file.read_text().strip()


async def source_delivering_to(base_url: str, token: str, sink: Sink) -> str:
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=auth) as admin:
        r = await admin.post("/v1/admin/sources", json={"name": "Website"})
        assert r.status_code == 201, r.text
        source = r.json()
        r = await admin.post(
            "/v1/admin/integrations",
            json={
                "source_id": source["id"],
                "type": "webhook",
                "name": "Sink",
                "config": {
                    "url": sink.url + "/hook",
                    "batch": True,
                    "batch_size": 500,
                    "batch_interval_ms": 100,
                },
            },
        )
        assert r.status_code == 201, r.text
    return str(source["write_key"])


def stock_segment_snippet(write_key: str, script_host: str, load: dict[str, Any]) -> str:
    """Segment's own snippet, rendered by @segment/snippet. It always loads the script over
    https; the local page server speaks http, the only edit made to it here."""
    options = {"apiKey": write_key, "host": script_host, "page": False, "load": load}
    script = f"process.stdout.write(require('@segment/snippet').max({json.dumps(options)}))"
    rendered = subprocess.run(
        ["node", "-e", script], cwd=HERE, check=True, capture_output=True, text=True, timeout=30
    ).stdout
    return rendered.replace('"https://', '"http://')


SEND_EVENTS = """async (burst) => {
  const sdk = window.sdk;
  const calls = [
    sdk.identify("user-1", {email: "ada@example.com", plan: "pro"}),
    sdk.track("Order Completed", {revenue: 42.5, currency: "EUR"}),
    sdk.page("Pricing"),
  ];
  for (let i = 0; i < burst; i++) calls.push(sdk.track("Burst", {i}));
  // analytics.js resolves each call once its event is handed to the Segment.io plugin.
  await Promise.all(calls.filter((c) => c && typeof c.then === "function"));
  return navigator.userAgent;
}"""


# The browser's unload-safe transports (fetch with keepalive, as analytics.js uses it when a
# page is left; navigator.sendBeacon, RudderStack's `useBeacon` transport): text/plain bodies
# with the write key inside or in the query, so no CORS preflight. Sent by hand: the SDKs' own
# use of them is for page unload, and a 200-event burst through them overruns Chromium's 64 KB
# in-flight budget for such requests (the SDKs then drop events, by their design).
RAW_TRANSPORTS = """async ([er, writeKey, rudder]) => {
  const event = (name) => ({type: "track", event: name, anonymousId: "raw"});
  // Segment's single-event path, or RudderStack's beacon batch (key in the query).
  const sent = rudder
    ? navigator.sendBeacon(er + "/beacon/v1/batch?writeKey=" + writeKey,
        JSON.stringify({batch: [event("Beacon")], sentAt: new Date().toISOString()}))
    : navigator.sendBeacon(er + "/v1/t", JSON.stringify({writeKey, ...event("Beacon")}));
  const r = await fetch(er + "/v1/t", {method: "POST", keepalive: true,
    body: JSON.stringify({writeKey, ...event("Keepalive")}),
    headers: {"Content-Type": "text/plain"}});
  return [sent, r.status];
}"""


def pages(er: str, write_key: str, page_host: str) -> dict[str, str]:
    batching = {"strategy": "batching", "config": {"size": 50, "timeout": 300}}
    segment_load = {"integrations": {"Segment.io": {"deliveryStrategy": batching}}}
    er_host = er.removeprefix("http://")
    rudder_queue = {"batch": {"enabled": True, "maxItems": 50, "flushInterval": 300}}
    rudder_options = {"queueOptions": rudder_queue, "logLevel": "ERROR"}
    inline_config = {
        "source": {"id": "src_inline", "config": {}, "destinations": [], "enabled": True}
    }
    head = "<!doctype html><html><head><title>Pricing - Shop</title>"
    return {
        # The stock snippet; the one setting changed: where analytics.js gets its settings.
        "segment-stock": head
        + f"<script>window.analytics = []; window.analytics._cdn = {json.dumps(er)};</script>"
        + f"<script>{stock_segment_snippet(write_key, page_host, segment_load)}</script>"
        + "<script>window.sdk = window.analytics;</script></head><body></body></html>",
        "segment-direct": head
        + '<script src="/sdk/segment.js"></script><script>'
        + "window.sdk = AnalyticsNext.AnalyticsBrowser.load("
        + json.dumps(
            {
                "writeKey": write_key,
                "cdnSettings": {"integrations": {"Segment.io": {"apiKey": write_key}}},
            }
        )
        + ", "
        + json.dumps(
            {
                "integrations": {
                    "Segment.io": {
                        "apiHost": er_host + "/v1",
                        "protocol": "http",
                        "deliveryStrategy": batching,
                    }
                }
            }
        )
        + ");</script></head><body></body></html>",
        "rudder-config": head
        + '<script src="/sdk/rudder.js"></script><script>'
        + "window.sdk = new rudderanalytics.RudderAnalytics();"
        + f"window.sdk.load({json.dumps(write_key)}, {json.dumps(er)}, "
        + json.dumps({**rudder_options, "configUrl": er})
        + ");</script></head><body></body></html>",
        "rudder-direct": head
        + '<script src="/sdk/rudder.js"></script><script>'
        + "window.sdk = new rudderanalytics.RudderAnalytics();"
        + f"window.sdk.load({json.dumps(write_key)}, {json.dumps(er)}, "
        + json.dumps(rudder_options)[:-1]
        + f", getSourceConfig: () => ({json.dumps(inline_config)})}});"
        + "</script></head><body></body></html>",
    }


class PageServer:
    """Serves the test pages and the SDK files from their npm packages."""

    def __init__(self) -> None:
        self.port = free_port()
        self.pages: dict[str, str] = {}
        self._runner: web.AppRunner | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(text=self.pages[request.match_info["name"]], content_type="text/html")

    async def start(self) -> PageServer:
        app = web.Application()
        app.router.add_get("/page/{name}", self._page)
        app.router.add_get("/analytics.js/v1/{key}/analytics.min.js", _file(SEGMENT_STANDALONE))
        app.router.add_get("/sdk/segment.js", _file(SEGMENT_UMD))
        app.router.add_get("/sdk/rudder.js", _file(RUDDER_UMD))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def close(self) -> None:
        if self._runner:
            await self._runner.cleanup()


def _file(path: Path) -> Any:
    async def handler(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(path, headers={"Content-Type": "text/javascript"})

    return handler


@pytest.mark.parametrize(
    "way", ["segment-stock", "segment-direct", "rudder-config", "rudder-direct"]
)
async def test_browser_sdk_events_reach_the_sink(
    eventrelay: tuple[str, str], sink: Sink, way: str
) -> None:
    _require_browser()
    from playwright.async_api import Route, async_playwright

    er, token = eventrelay
    write_key = await source_delivering_to(er, token, sink)
    server = await PageServer().start()
    server.pages = pages(er, write_key, server.host)
    outside: list[str] = []

    async def local_only(route: Route) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1:", "data:", "blob:")):
            await route.continue_()
        else:
            outside.append(url)
            await route.abort()

    page_url = f"http://{server.host}/page/{way}?{CAMPAIGN}"
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                seen: list[str] = []  # shown when the sink times out
                page.on("console", lambda m: seen.append(f"console {m.type}: {m.text}"))
                page.on("response", lambda r: seen.append(f"{r.request.method} {r.url} {r.status}"))
                page.on("requestfailed", lambda r: seen.append(f"failed {r.url} {r.failure}"))
                await page.route("**/*", local_only)
                await page.goto(page_url)
                await page.wait_for_function("() => window.sdk !== undefined")
                user_agent = await page.evaluate(SEND_EVENTS, BURST)
                raw = ["Beacon", "Keepalive"] if way.endswith("direct") else []
                if raw:
                    rudder = way.startswith("rudder")
                    sent = await page.evaluate(RAW_TRANSPORTS, [er, write_key, rudder])
                    assert sent == [True, 200]
                try:
                    await sink.wait_for(
                        lambda: len(sink.events()) >= BURST + 3 + len(raw), timeout=20
                    )
                except AssertionError:
                    got = len(sink.events())
                    raise AssertionError(
                        f"{got} events arrived; page saw:\n" + "\n".join(seen[-40:])
                    ) from None
                await asyncio.sleep(0.3)  # nothing more (no duplicates) should follow
            finally:
                await browser.close()
    finally:
        await server.close()

    assert errors == []
    assert outside == []
    responses = [line.split() for line in seen if not line.startswith("console")]
    assert [r for r in responses if int(r[-1]) >= 400] == []
    config_path = {"segment-stock": "/v1/projects/", "rudder-config": "/sourceConfig/"}.get(way)
    if config_path:  # the settings came from eventrelay
        assert any(r[0] == "GET" and config_path in r[1] and r[-1] == "200" for r in responses)
    events = sink.events()
    raw_events = [e for e in events if e.get("event") in raw]
    assert sorted(e["event"] for e in raw_events) == raw
    assert all(e["context"]["ip"] == "127.0.0.1" for e in raw_events)
    events = [e for e in events if e not in raw_events]
    kinds = sorted(e["type"] for e in events)
    assert kinds.count("identify") == 1 and kinds.count("page") == 1
    assert kinds.count("track") == BURST + 1
    assert sorted(e["properties"]["i"] for e in events if e.get("event") == "Burst") == list(
        range(BURST)
    )
    for event in events:
        context = event["context"]
        assert context["userAgent"] == user_agent
        assert context["page"]["url"] == page_url
        assert context["page"]["title"] == "Pricing - Shop"
        assert context["campaign"]["source"] == "newsletter"
        assert context["campaign"]["name"] == "spring"
        assert context["ip"] == "127.0.0.1"
        assert event["messageId"] and event["receivedAt"].endswith("Z")
    identify = next(e for e in events if e["type"] == "identify")
    assert identify["userId"] == "user-1"
    assert identify["traits"]["email"] == "ada@example.com"
    order = next(e for e in events if e.get("event") == "Order Completed")
    assert order["properties"] == {"revenue": 42.5, "currency": "EUR"}
