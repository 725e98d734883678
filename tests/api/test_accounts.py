"""Console accounts: login, access-token expiry, refresh rotation and reuse detection, rate
limits, cookie sessions with CSRF, roles, invitations, deactivation, audit (issue 14)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest
from pydantic import SecretStr

from eventrelay.control.users import create_with_password
from eventrelay.settings import Settings
from eventrelay.store.audit import Actor
from eventrelay.store.orgs import first
from tests.support.api import Api, running_api

PASSWORD = "correct horse battery staple"
LOGIN = "/v1/admin/auth/login"
REFRESH = "/v1/admin/auth/refresh"
LOGOUT = "/v1/admin/auth/logout"
COOKIE_MODE = {"X-EventRelay-Session": "cookie"}


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    limited = settings.model_copy(
        update={"login_failures_per_account": 3, "login_failures_per_address": 6}
    )
    async with running_api(limited) as client:
        yield client


async def _user(api: Api, email: str, role: str) -> str:
    rt = api.runtime
    async with rt.db.read() as conn:
        org = await first(conn)
    assert org is not None
    user = await create_with_password(
        rt, Actor(str(org["id"]), None, "test"), email, email, role, PASSWORD
    )
    return str(user["id"])


async def _login(api: Api, email: str, password: str = PASSWORD, **kw: object) -> httpx.Response:
    return await api.client.post(LOGIN, json={"email": email, "password": password}, **kw)  # type: ignore[arg-type]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_login_gives_an_access_token_the_api_takes(api: Api) -> None:
    await _user(api, "Ada@Example.com", "editor")
    r = await _login(api, "ada@example.com")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["user"]["role"] == "editor"
    assert body["refresh_token"].startswith("erf_") and "set-cookie" not in r.headers
    me = await api.client.get("/v1/admin/auth/me", headers=_bearer(body["access_token"]))
    assert me.json()["kind"] == "user" and me.json()["name"] == "ada@example.com"
    created = await api.client.post(
        "/v1/admin/sources", json={"name": "Web"}, headers=_bearer(body["access_token"])
    )
    assert created.status_code == 201
    # API tokens keep working next to users.
    assert (await api.get("/v1/admin/sources")).status_code == 200
    # Everything a user does is in the audit log under their name.
    log = (await api.get("/v1/admin/audit-log")).json()["data"]
    by_action = {e["action"]: e for e in log}
    assert by_action["source.created"]["actor"]["name"] == "ada@example.com"
    assert by_action["source.created"]["actor"]["user_id"].startswith("usr_")
    assert by_action["user.login"]["actor"]["name"] == "ada@example.com"


async def test_wrong_email_and_wrong_password_get_the_same_answer(api: Api) -> None:
    await _user(api, "bob@example.com", "viewer")
    wrong_password = await _login(api, "bob@example.com", "not the password at all")
    no_such_user = await _login(api, "nobody@example.com", "not the password at all")
    assert wrong_password.status_code == no_such_user.status_code == 401
    assert wrong_password.json() == no_such_user.json()


async def test_an_expired_access_token_is_refused(api: Api) -> None:
    await _user(api, "cy@example.com", "viewer")
    body = (await _login(api, "cy@example.com")).json()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    key = api.runtime.vault.derived_keys("console-access-token")[0]
    expired = jwt.encode({**claims, "exp": int(time.time()) - 1}, key, algorithm="HS256")
    r = await api.client.get("/v1/admin/sources", headers=_bearer(expired))
    assert r.status_code == 401
    assert "expired" in r.json()["error"]["message"]
    forged = jwt.encode(claims, b"x" * 32, algorithm="HS256")
    assert (await api.client.get("/v1/admin/sources", headers=_bearer(forged))).status_code == 401
    assert (
        await api.client.get("/v1/admin/sources", headers=_bearer(body["access_token"]))
    ).status_code == 200


async def test_refresh_rotates_and_reuse_revokes_the_session(api: Api) -> None:
    await _user(api, "dee@example.com", "viewer")
    first_tokens = (await _login(api, "dee@example.com")).json()
    second = await api.client.post(REFRESH, json={"refresh_token": first_tokens["refresh_token"]})
    assert second.status_code == 200, second.text
    second_tokens = second.json()
    assert second_tokens["refresh_token"] != first_tokens["refresh_token"]
    access = second_tokens["access_token"]
    assert (await api.client.get("/v1/admin/sources", headers=_bearer(access))).status_code == 200
    # The first refresh token again: somebody else holds it. The whole session ends.
    replay = await api.client.post(REFRESH, json={"refresh_token": first_tokens["refresh_token"]})
    assert replay.status_code == 401
    assert "already used" in replay.json()["error"]["message"]
    assert (await api.client.get("/v1/admin/sources", headers=_bearer(access))).status_code == 401
    latest = await api.client.post(REFRESH, json={"refresh_token": second_tokens["refresh_token"]})
    assert latest.status_code == 401
    actions = [e["action"] for e in (await api.get("/v1/admin/audit-log")).json()["data"]]
    assert "session.revoked" in actions


async def test_logout_ends_the_session(api: Api) -> None:
    await _user(api, "eve@example.com", "viewer")
    tokens = (await _login(api, "eve@example.com")).json()
    r = await api.client.post(LOGOUT, json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 204
    headers = _bearer(tokens["access_token"])
    assert (await api.client.get("/v1/admin/sources", headers=headers)).status_code == 401
    again = await api.client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 401


async def test_login_is_rate_limited_per_account_and_per_address(api: Api) -> None:
    await _user(api, "fay@example.com", "viewer")
    for _ in range(3):
        assert (await _login(api, "fay@example.com", "wrong password, wrong")).status_code == 401
    limited = await _login(api, "fay@example.com")  # even the right password now
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    # Another account from the same address still may, until the address limit (6).
    await _user(api, "gus@example.com", "viewer")
    assert (await _login(api, "gus@example.com")).status_code == 200
    for _ in range(3):
        assert (await _login(api, "x@example.com", "wrong password, wrong")).status_code == 401
    assert (await _login(api, "gus@example.com")).status_code == 429
    # An unknown email is limited like a known one (no hint whether it exists).
    assert (await _login(api, "x@example.com", "wrong password, wrong")).status_code == 429


async def test_cookie_session_needs_the_csrf_header_to_change_things(api: Api) -> None:
    await _user(api, "hal@example.com", "editor")
    r = await _login(api, "hal@example.com", headers=COOKIE_MODE)
    assert r.status_code == 200
    body = r.json()
    assert body["access_token"] is None and body["refresh_token"] is None
    set_cookie = r.headers.get_list("set-cookie")
    access = next(c for c in set_cookie if c.startswith("er_access="))
    assert "HttpOnly" in access and "SameSite=strict" in access and "Secure" not in access
    refresh = next(c for c in set_cookie if c.startswith("er_refresh="))
    assert "HttpOnly" in refresh and "Path=/v1/admin/auth" in refresh
    csrf_cookie = next(c for c in set_cookie if c.startswith("er_csrf="))
    assert "HttpOnly" not in csrf_cookie
    client = api.client  # keeps the cookies
    assert (await client.get("/v1/admin/sources")).status_code == 200
    refused = await client.post("/v1/admin/sources", json={"name": "x"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    wrong = await client.post(
        "/v1/admin/sources", json={"name": "x"}, headers={"X-CSRF-Token": "forged"}
    )
    assert wrong.status_code == 403
    ok = await client.post(
        "/v1/admin/sources", json={"name": "x"}, headers={"X-CSRF-Token": body["csrf_token"]}
    )
    assert ok.status_code == 201
    # Refresh from the cookie needs the header too, and rotates the cookies.
    assert (await client.post(REFRESH)).status_code == 403
    renewed = await client.post(REFRESH, headers={"X-CSRF-Token": body["csrf_token"]})
    assert renewed.status_code == 200, renewed.text
    assert (await client.post(LOGOUT, headers={"X-CSRF-Token": "nope"})).status_code == 403
    out = await client.post(LOGOUT, headers={"X-CSRF-Token": renewed.json()["csrf_token"]})
    assert out.status_code == 204
    assert (await client.get("/v1/admin/sources")).status_code == 401


async def test_cookies_are_secure_over_https(api: Api) -> None:
    await _user(api, "ida@example.com", "viewer")
    transport = httpx.ASGITransport(app=api.client._transport.app)  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url="https://console.test") as tls:
        r = await tls.post(
            LOGIN, json={"email": "ida@example.com", "password": PASSWORD}, headers=COOKIE_MODE
        )
    assert r.status_code == 200
    assert all("Secure" in c for c in r.headers.get_list("set-cookie"))


async def test_a_viewer_is_refused_changes(api: Api) -> None:
    await _user(api, "jo@example.com", "viewer")
    access = (await _login(api, "jo@example.com")).json()["access_token"]
    r = await api.client.post("/v1/admin/sources", json={"name": "x"}, headers=_bearer(access))
    assert r.status_code == 403
    assert "the user is viewer" in r.json()["error"]["message"]
    assert (await api.client.get("/v1/admin/users", headers=_bearer(access))).status_code == 403


async def test_invite_setup_deactivate_and_reset(api: Api) -> None:
    invited = await api.post(
        "/v1/admin/users", json={"email": "kim@example.com", "name": "Kim", "role": "editor"}
    )
    assert invited.status_code == 201, invited.text
    user = invited.json()
    assert user["status"] == "invited" and user["setup_path"].endswith(user["setup_token"])
    assert (await _login(api, "kim@example.com")).status_code == 401
    short = await api.client.post(
        "/v1/admin/auth/setup", json={"token": user["setup_token"], "password": "short"}
    )
    assert short.status_code == 422 and short.json()["error"]["details"][0]["field"] == "password"
    done = await api.client.post(
        "/v1/admin/auth/setup", json={"token": user["setup_token"], "password": PASSWORD}
    )
    assert done.status_code == 200 and done.json()["status"] == "active"
    again = await api.client.post(
        "/v1/admin/auth/setup", json={"token": user["setup_token"], "password": PASSWORD}
    )
    assert again.status_code == 404  # one-time
    access = (await _login(api, "kim@example.com")).json()["access_token"]

    # Own password change.
    changed = await api.client.post(
        "/v1/admin/auth/password",
        json={"current_password": "wrong", "new_password": "another long password"},
        headers=_bearer(access),
    )
    assert changed.status_code == 422
    changed = await api.client.post(
        "/v1/admin/auth/password",
        json={"current_password": PASSWORD, "new_password": "another long password"},
        headers=_bearer(access),
    )
    assert changed.status_code == 204
    assert (await _login(api, "kim@example.com", "another long password")).status_code == 200

    # Deactivation ends the session at once.
    off = await api.post(f"/v1/admin/users/{user['id']}/deactivate")
    assert off.status_code == 200 and off.json()["status"] == "deactivated"
    assert (await api.client.get("/v1/admin/sources", headers=_bearer(access))).status_code == 401
    assert (await _login(api, "kim@example.com", "another long password")).status_code == 401
    on = await api.post(f"/v1/admin/users/{user['id']}/reactivate")
    assert on.json()["status"] == "active"

    # Reset by an admin: the old password stops working; the link sets a new one.
    reset = await api.post(f"/v1/admin/users/{user['id']}/reset-password")
    assert reset.status_code == 200
    assert (await _login(api, "kim@example.com", "another long password")).status_code == 401
    await api.client.post(
        "/v1/admin/auth/setup", json={"token": reset.json()["setup_token"], "password": PASSWORD}
    )
    assert (await _login(api, "kim@example.com")).status_code == 200

    # Only an owner grants the owner role.
    admin_access = await _admin_access(api)
    promote = await api.client.patch(
        f"/v1/admin/users/{user['id']}", json={"role": "owner"}, headers=_bearer(admin_access)
    )
    assert promote.status_code == 403
    promote = await api.client.patch(
        f"/v1/admin/users/{user['id']}", json={"role": "admin"}, headers=_bearer(admin_access)
    )
    assert promote.status_code == 200 and promote.json()["role"] == "admin"
    actions = {e["action"] for e in (await api.get("/v1/admin/audit-log")).json()["data"]}
    assert {
        "user.invited",
        "user.password_set",
        "user.password_changed",
        "user.deactivated",
        "user.password_reset",
        "user.updated",
    } <= actions


async def _admin_access(api: Api) -> str:
    await _user(api, "admin@example.com", "admin")
    token: str = (await _login(api, "admin@example.com")).json()["access_token"]
    return token


async def test_duplicate_email_and_bad_email_are_refused(api: Api) -> None:
    body = {"email": "lee@example.com", "name": "Lee", "role": "viewer"}
    assert (await api.post("/v1/admin/users", json=body)).status_code == 201
    assert (
        await api.post("/v1/admin/users", json={**body, "email": "LEE@example.com"})
    ).status_code == 409
    bad = await api.post("/v1/admin/users", json={**body, "email": "not an email"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "email"


async def test_first_start_creates_the_owner_user_from_the_settings(settings: Settings) -> None:
    first_start = settings.model_copy(
        update={"owner_email": "Owner@Example.com", "owner_password": SecretStr(PASSWORD)}
    )
    async with running_api(first_start) as api:
        r = await _login(api, "owner@example.com")
        assert r.status_code == 200 and r.json()["user"]["role"] == "owner"
    async with running_api(first_start) as api:  # a second start adds nobody
        users = (await api.get("/v1/admin/users")).json()["data"]
        assert [u["email"] for u in users] == ["owner@example.com"]


def test_cli_users_create(tmp_path: Path) -> None:
    """`eventrelay users create` on the configured database, no server running."""
    env = {**os.environ, "EVENTRELAY_DATA_DIR": str(tmp_path), "EVENTRELAY_NEW_PASSWORD": PASSWORD}
    subprocess.run([sys.executable, "-m", "eventrelay", "migrate"], env=env, check=True)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "eventrelay", "users", "create", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True)

    out = run("--email", "root@example.com", "--role", "owner")
    assert out.returncode == 0, out.stderr
    assert "root@example.com (owner)" in out.stdout and PASSWORD not in out.stdout
    again = run("--email", "ROOT@example.com", "--role", "owner")
    assert again.returncode == 1 and "exists" in again.stderr and "Traceback" not in again.stderr
    weak = run("--email", "x@example.com", "--role", "viewer", "--password", "short")
    assert weak.returncode == 1 and "12 characters" in weak.stderr
