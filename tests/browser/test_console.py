"""The operator console in Debian's Chromium (issue 14's "Done when"), one flow:

log in; create a source; create a webhook integration through the form generated from the
catalog's JSON Schema; send events with the Python SDK and with analytics.js and RudderStack's
SDK from a page of another origin (CORS) and watch them in the live debugger; see them delivered
to a local sink and counted in the chart; break the sink and see the failure with the sink's
answer; fix it and resume; put a routing rule (a 422 in words, Try on samples, Save) and see only
matching events at the sink; save organisation rules; a viewer sees rules read-only, no edit
controls, and the API refuses them anyway.

The screenshots in docs/screenshots/ (shown in the README) are taken here.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from segment.analytics.client import Client as SegmentClient

from eventrelay.api.routes.console import PACKAGED
from eventrelay.app import create_app
from eventrelay.runtime import Runtime
from eventrelay.settings import Settings
from tests.browser.test_browser_sdks import (
    CHROMIUM,
    SEND_EVENTS,
    PageServer,
    _require_browser,
    pages,
)
from tests.support.server import serve_in_thread
from tests.support.services import require
from tests.support.sink import Sink

pytestmark = pytest.mark.slow

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
OWNER = "owner@example.com"
VIEWER = "viewer@example.com"
PASSWORD = "correct horse battery staple"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def eventrelay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    root = tmp_path_factory.mktemp("console")
    settings = Settings(
        data_dir=root / "data",
        database_url=f"sqlite:///{root / 'eventrelay.db'}",
        secret_key=Fernet.generate_key().decode(),
        allow_private_targets=True,
        retry_base_seconds=0.05,
        retry_cap_seconds=0.5,
        error_window_seconds=1.0,
        owner_email=OWNER,
        owner_password=SecretStr(PASSWORD),
    )
    from eventrelay.store import migrate

    migrate.upgrade(settings.resolved_database_url)
    app = create_app(Runtime.create(settings), bootstrap_owner=True)
    with serve_in_thread(app) as base_url:
        yield base_url, settings.owner_token_file.read_text().strip()


def _require_console() -> None:
    _require_browser()
    require(
        (PACKAGED / "index.html").exists(),
        "the built console",
        "build it with: make console (needs npm; make test does it)",
    )


async def _login(page: Any, base_url: str, email: str) -> None:
    await page.goto(base_url + "/")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.get_by_role("heading", name="Sources").wait_for()


async def _viewer(base_url: str, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=auth) as admin:
        r = await admin.post(
            "/v1/admin/users", json={"email": VIEWER, "name": "Vera", "role": "viewer"}
        )
        assert r.status_code == 201, r.text
        r = await admin.post(
            "/v1/admin/auth/setup",
            json={"token": r.json()["setup_token"], "password": PASSWORD},
        )
        assert r.status_code == 200, r.text


def _send_with_python_sdk(base_url: str, write_key: str, events: list[str]) -> None:
    errors: list[Any] = []
    client = SegmentClient(
        write_key, host=base_url, sync_mode=True, on_error=lambda e, b: errors.append(e)
    )
    client.identify(user_id="ada-1", traits={"plan": "pro"})
    for name in events:
        client.track(user_id="ada-1", event=name, properties={"revenue": 42})
    client.flush()
    assert errors == []


async def test_console_flow(eventrelay: tuple[str, str], sink: Sink) -> None:
    _require_console()
    from playwright.async_api import async_playwright

    base_url, token = eventrelay
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 800})
            page = await context.new_page()
            page.set_default_timeout(30_000)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))

            # Log in.
            await page.goto(base_url + "/")
            await page.get_by_role("button", name="Log in").wait_for()
            await page.screenshot(path=SHOTS / "login.png")
            await _login(page, base_url, OWNER)
            cookies = {c["name"]: c for c in await context.cookies()}
            assert cookies["er_access"]["httpOnly"] and cookies["er_refresh"]["httpOnly"]
            assert await page.evaluate("document.cookie.includes('er_access')") is False

            # A source, its write key and snippets.
            await page.get_by_label("New source name").fill("Website")
            await page.get_by_role("button", name="Create source").click()
            write_key = await page.get_by_test_id("write-key").inner_text()
            assert write_key.startswith("wk_")
            await page.screenshot(path=SHOTS / "sources.png")

            # A webhook integration through the generated form.
            await page.get_by_role("link", name="Integrations").click()
            await page.get_by_role("link", name="New integration").click()
            await page.get_by_label("Name", exact=True).fill("Order sink")
            await page.get_by_label("Url").fill(sink.url + "/hook")
            await page.screenshot(path=SHOTS / "integration-form.png", full_page=True)
            await page.get_by_role("button", name="Create integration").click()
            await page.get_by_role("heading", name="Order sink").wait_for()
            integration_url = page.url

            # Events from the Python SDK, watched in the live debugger.
            await page.goto(base_url + "/#/live")
            await page.get_by_text("● live").wait_for()
            await asyncio.to_thread(
                _send_with_python_sdk, base_url, write_key, ["Order Completed", "Cart Viewed"]
            )
            row = page.locator("tr.live-row", has_text="Order Completed")
            await row.wait_for()
            await page.locator("tr.live-row", has_text="Order sink: queued").first.wait_for()
            # Its delivery outcome attaches to the row as the worker settles it.
            await row.locator("[data-outcome=delivered]").wait_for()
            assert "Order sink" in (
                await row.locator("[data-outcome=delivered]").get_attribute("aria-label") or ""
            )
            await row.click()
            await page.get_by_role("heading", name="Raw JSON").wait_for()
            assert '"revenue": 42' in await page.locator("aside pre").inner_text()

            # Browser SDKs from a page of another origin reach the same debugger (CORS).
            # The SDK pages stay open until their events are seen: closing a page may abort
            # what its SDK has not sent yet.
            server = await PageServer().start()
            sdk_pages = []
            try:
                server.pages = pages(base_url, write_key, server.host)
                for way in ("segment-direct", "rudder-direct"):
                    sdk_page = await context.new_page()
                    sdk_pages.append(sdk_page)
                    await sdk_page.goto(f"http://{server.host}/page/{way}")
                    await sdk_page.wait_for_function("() => window.sdk !== undefined")
                    await sdk_page.evaluate(SEND_EVENTS, 0)
                await page.wait_for_function(
                    "() => [...document.querySelectorAll('tr.live-row td:nth-child(2)')]"
                    ".filter(td => ['page', 'identify'].includes(td.textContent)).length >= 5",
                    timeout=60_000,
                )
            finally:
                for sdk_page in sdk_pages:
                    await sdk_page.close()
                await server.close()
            live_types = page.locator("tr.live-row td:nth-child(2)")
            assert {"track", "identify", "page"} <= set(await live_types.all_inner_texts())
            await page.screenshot(path=SHOTS / "live-debugger.png")
            await sink.wait_for(lambda: len(sink.events()) >= 9, timeout=30)

            # Delivered and counted in the chart.
            await page.goto(integration_url)
            await page.wait_for_function(
                "() => Number(document.querySelector('[data-testid=total-successes]')"
                "?.textContent) >= 9"
            )
            await page.screenshot(path=SHOTS / "integration.png", full_page=True)

            # Break the sink: the failure shows with the sink's answer; the integration errs.
            sink.default = 503
            sink.body = b'{"error": "sink is down for maintenance"}'
            await asyncio.to_thread(_send_with_python_sdk, base_url, write_key, ["Refund"])
            await page.locator(".badge", has_text="error").first.wait_for()
            await page.get_by_test_id("last-error").wait_for()
            failure = page.locator("details.failure").first
            await failure.wait_for()
            assert "HTTP 503" in await failure.locator("summary").inner_text()
            await failure.locator("summary").click()
            assert "sink is down for maintenance" in await failure.inner_text()
            await page.screenshot(path=SHOTS / "integration-failure.png", full_page=True)

            # Fix it and resume: what waited is delivered.
            sink.default = 200
            await page.get_by_role("button", name="Resume from error").click()
            await page.locator("h1 .badge", has_text="active").wait_for()
            await sink.wait_for(
                lambda: any(e.get("event") == "Refund" for e in sink.events()), timeout=30
            )
            assert errors == []

            # Rules: a trigger that only lets "Order Completed" through, tried, then saved.
            editor = page.get_by_test_id("rules-editor")
            await editor.fill('{"trigger": "event = "}')
            await page.get_by_role("button", name="Save rules").click()
            assert (
                "In trigger at character" in await page.get_by_test_id("rules-error").inner_text()
            )
            await editor.fill('{"trigger": "event = \\"Order Completed\\""}')
            await page.get_by_role("button", name="Try", exact=True).click()
            results = page.get_by_test_id("rules-results").locator("li")
            await results.first.wait_for()
            assert await results.locator(".badge").all_inner_texts() == [
                "kept",
                "filtered: the trigger did not match",
            ]
            await page.get_by_role("region", name="Rules").screenshot(
                path=SHOTS / "integration-rules.png"
            )
            await page.get_by_role("button", name="Save rules").click()
            await page.get_by_role("status").filter(has_text="Saved.").wait_for()
            # The change reaches the worker through the bus, and deliveries of earlier events
            # may still be settling: give both a moment before counting.
            await asyncio.sleep(2.0)
            before = len(sink.events())
            await asyncio.to_thread(
                _send_with_python_sdk, base_url, write_key, ["Cart Viewed", "Order Completed"]
            )
            await sink.wait_for(lambda: len(sink.events()) > before, timeout=30)
            await asyncio.sleep(1.0)  # the identify and "Cart Viewed" came first: none follows
            assert [e.get("event") for e in sink.events()[before:]] == ["Order Completed"]
            # Saving the integration's form keeps its rules.
            await page.get_by_role("link", name="Edit").click()
            await page.get_by_role("button", name="Save", exact=True).click()
            await page.get_by_role("heading", name="Order sink").wait_for()
            await page.wait_for_function(
                "() => document.querySelector('[data-testid=rules-editor]')"
                "?.value.includes('Order Completed')"
            )

            # Organisation rules: a 422 in words, then a template saved.
            await page.get_by_role("link", name="Organisation rules").click()
            org_editor = page.get_by_test_id("org-rules-editor")
            await page.wait_for_function(
                "() => document.querySelector('[data-testid=org-rules-editor]')"
                "?.value.includes('redact')"
            )
            await org_editor.fill('{"drop": ["type ="]}')
            await page.get_by_role("button", name="Save rules").click()
            assert "In drop condition 1" in await page.get_by_test_id("rules-error").inner_text()
            await org_editor.fill("{}")
            await page.get_by_role("button", name="Hash", exact=True).click()
            await page.get_by_role("button", name="Save rules").click()
            await page.get_by_role("status").filter(has_text="Saved.").wait_for()
            # Tried on samples as ingest would treat them: hashed, or refused and why.
            await page.get_by_test_id("rules-samples").fill(
                '[{"type": "track", "event": "E", "userId": "u",'
                ' "properties": {"order_ref": "A-1"}}, {"type": "track", "userId": "u"}]'
            )
            await page.get_by_role("button", name="Try").click()
            results = page.get_by_test_id("rules-results")
            await results.wait_for()
            text = await results.inner_text()
            assert hashlib.sha256(b"A-1").hexdigest() in text and '"A-1"' not in text
            assert "refused by ingest: event:" in text

            # Users and tokens: an invitation's one-time setup link; a token shown once, revoked.
            await page.get_by_role("link", name="Users & tokens").click()
            invite = page.get_by_role("form", name="Invite a user")
            await invite.get_by_label("Email").fill("erin@example.com")
            await invite.get_by_label("Name").fill("Erin")
            await invite.get_by_label("Role").select_option("editor")
            await invite.get_by_role("button", name="Invite").click()
            await page.get_by_role("status").filter(has_text="Setup link").wait_for()
            await page.get_by_role("cell", name="erin@example.com Erin").wait_for()
            tokens = page.get_by_role("form", name="Create a token")
            await tokens.get_by_label("Name").fill("ci deploys")
            await tokens.get_by_role("button", name="Create token").click()
            await page.get_by_role("status").filter(has_text="The new token").wait_for()
            row = page.get_by_role("row").filter(has_text="ci deploys")
            await row.get_by_role("button", name="Revoke").click()
            await row.filter(has_text="revoked").wait_for()
            assert errors == []

            # A viewer sees no edit controls, and the API refuses them anyway.
            await _viewer(base_url, token)
            viewer_context = await browser.new_context(viewport={"width": 1280, "height": 800})
            viewer = await viewer_context.new_page()
            viewer.set_default_timeout(30_000)
            await _login(viewer, base_url, VIEWER)
            await viewer.get_by_text("Website").first.wait_for()
            assert await viewer.get_by_role("button", name="Create source").count() == 0
            await viewer.goto(integration_url)
            await viewer.get_by_role("heading", name="Order sink").wait_for()
            await viewer.get_by_role("heading", name="Delivery").wait_for()
            for control in ("Pause", "Send test event", "Resume from error"):
                assert await viewer.get_by_role("button", name=control).count() == 0
            assert await viewer.get_by_role("link", name="Edit").count() == 0
            assert await viewer.get_by_role("link", name="Live debugger").count() == 0
            assert "Order Completed" in await viewer.get_by_test_id("rules-view").inner_text()
            for control in ("Try", "Save rules"):
                assert await viewer.get_by_role("button", name=control).count() == 0
            assert await viewer.get_by_test_id("rules-editor").count() == 0
            await viewer.get_by_role("link", name="Organisation rules").click()
            await (
                viewer.get_by_test_id("rules-view")
                .filter(has_text="properties.order_ref")
                .wait_for()
            )
            for control in ("Try", "Save rules"):
                assert await viewer.get_by_role("button", name=control).count() == 0
            status = await viewer.evaluate(
                """async () => {
                  const csrf = document.cookie.match(/er_csrf=([^;]+)/)[1];
                  const r = await fetch('/v1/admin/sources', {method: 'POST',
                    headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
                    body: JSON.stringify({name: 'sneaky'})});
                  const rules = await fetch('/v1/admin/organization/rules', {method: 'PUT',
                    headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
                    body: JSON.stringify({})});
                  return [r.status, (await r.json()).error.code, rules.status];
                }"""
            )
            assert status == [403, "forbidden", 403]
            await viewer_context.close()
        finally:
            await browser.close()
