"""Tokens, roles for every endpoint, and organisation isolation."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.api import Api
from tests.support.examples import valid_configs

ROLE_ORDER = ["viewer", "editor", "admin", "owner"]

# (method, path template, minimum role, json body)
ENDPOINTS = [
    ("GET", "/v1/admin/sources", "viewer", None),
    ("POST", "/v1/admin/sources", "editor", {"name": "new"}),
    ("GET", "/v1/admin/sources/{src}", "viewer", None),
    ("PUT", "/v1/admin/sources/{src}", "editor", {"name": "renamed"}),
    ("POST", "/v1/admin/sources/{src}/write-keys/rotate", "editor", None),
    ("DELETE", "/v1/admin/sources/{empty_src}", "admin", None),
    ("GET", "/v1/admin/integrations", "viewer", None),
    ("POST", "/v1/admin/integrations", "editor", "integration"),
    ("GET", "/v1/admin/integrations/{int}", "viewer", None),
    ("PUT", "/v1/admin/integrations/{int}", "editor", {"name": "renamed"}),
    ("POST", "/v1/admin/integrations/{int}/status", "editor", {"status": "paused"}),
    ("DELETE", "/v1/admin/integrations/{int}", "admin", None),
    ("GET", "/v1/admin/catalog", "viewer", None),
    ("GET", "/v1/admin/catalog/ga4", "viewer", None),
    ("GET", "/v1/admin/organization", "viewer", None),
    ("PUT", "/v1/admin/organization", "admin", {"consent_categories": ["analytics"]}),
    ("GET", "/v1/admin/audit-log", "admin", None),
    ("GET", "/v1/admin/users", "admin", None),
    ("GET", "/v1/admin/tokens", "owner", None),
    ("POST", "/v1/admin/tokens", "owner", {"name": "t", "role": "viewer"}),
]


@pytest.mark.parametrize(("method", "path", "minimum", "body"), ENDPOINTS)
async def test_role_required_for_each_endpoint(
    api: Api, method: str, path: str, minimum: str, body: object
) -> None:
    tokens = {role: await api.make_token(role) for role in ROLE_ORDER[:-1]}
    tokens["owner"] = api.owner_token
    for role in ROLE_ORDER:
        source = await api.make_source()
        empty = await api.make_source("empty")
        integration = await api.make_integration(
            source["id"], type="ga4", config=valid_configs()["ga4"]
        )
        url = path.format(src=source["id"], empty_src=empty["id"], int=integration["id"])
        payload = (
            {
                "source_id": source["id"],
                "type": "ga4",
                "name": "x",
                "config": valid_configs()["ga4"],
            }
            if body == "integration"
            else body
        )
        r = await api.request(method, url, tokens[role], json=payload)
        allowed = ROLE_ORDER.index(role) >= ROLE_ORDER.index(minimum)
        if allowed:
            assert r.status_code < 400, (role, method, url, r.text)
        else:
            assert r.status_code == 403, (role, method, url, r.status_code)
            assert r.json()["error"]["code"] == "forbidden"


async def test_missing_and_invalid_tokens_are_401(api: Api) -> None:
    r = await api.client.get("/v1/admin/sources")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"
    r = await api.get("/v1/admin/sources", token="ert_notatoken")
    assert r.status_code == 401
    r = await api.client.get("/v1/admin/sources", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401


async def test_token_lifecycle(api: Api) -> None:
    r = await api.post("/v1/admin/tokens", json={"name": "ci", "role": "editor"})
    assert r.status_code == 201
    created = r.json()
    secret = created["token"]
    assert created["id"].startswith("tok_") and created["role"] == "editor"
    assert (await api.get("/v1/admin/sources", token=secret)).status_code == 200
    listed = (await api.get("/v1/admin/tokens")).json()["data"]
    assert created["id"] in [t["id"] for t in listed]
    assert all("token" not in t for t in listed)
    assert secret not in str(listed)
    assert (await api.delete(f"/v1/admin/tokens/{created['id']}")).status_code == 204
    assert (await api.get("/v1/admin/sources", token=secret)).status_code == 401
    assert (await api.delete(f"/v1/admin/tokens/{created['id']}")).status_code == 404


async def test_last_owner_token_cannot_be_revoked(api: Api) -> None:
    listed = (await api.get("/v1/admin/tokens")).json()["data"]
    [owner] = [t for t in listed if t["role"] == "owner"]
    r = await api.delete(f"/v1/admin/tokens/{owner['id']}")
    assert r.status_code == 409


async def test_tokens_are_stored_hashed(api: Api) -> None:
    from sqlalchemy import select

    from eventrelay.store.tables import tokens

    secret = await api.make_token("viewer")
    async with api.runtime.db.read() as conn:
        rows = [dict(r._mapping) for r in await conn.execute(select(tokens))]
    assert secret not in repr(rows)
    assert api.owner_token not in repr(rows)


async def _other_org_token(api: Api) -> str:
    from eventrelay.control.tokens import TokenCreate, create
    from eventrelay.store import orgs
    from eventrelay.store.audit import Actor

    async with api.runtime.db.transaction() as conn:
        org = await orgs.create(conn, "Other org")
    created = await create(
        api.runtime, Actor(org["id"], None, "test"), TokenCreate(name="o", role="owner")
    )
    return str(created["token"])


async def test_organisation_isolation(api: Api) -> None:
    source = await api.make_source()
    integration = await api.make_integration(
        source["id"], type="ga4", config=valid_configs()["ga4"]
    )
    other = await _other_org_token(api)
    for path in (
        f"/v1/admin/sources/{source['id']}",
        f"/v1/admin/integrations/{integration['id']}",
    ):
        assert (await api.get(path, token=other)).status_code == 404
        assert (await api.put(path, token=other, json={"name": "hijack"})).status_code == 404
        assert (await api.delete(path, token=other)).status_code == 404
    assert (await api.get("/v1/admin/integrations", token=other)).json()["data"] == []
    assert (await api.get("/v1/admin/sources", token=other)).json()["data"] == []
    other_audit = (await api.get("/v1/admin/audit-log", token=other)).json()["data"]
    assert [e["action"] for e in other_audit] == ["token.created"]  # only its own history
    r = await api.post(
        "/v1/admin/integrations",
        token=other,
        json={
            "source_id": source["id"],
            "type": "ga4",
            "name": "x",
            "config": valid_configs()["ga4"],
        },
    )
    assert r.status_code == 422  # the other org cannot attach to this org's source
    other_tokens = (await api.get("/v1/admin/tokens", token=other)).json()["data"]
    mine = (await api.get("/v1/admin/tokens")).json()["data"]
    assert not {t["id"] for t in other_tokens} & {t["id"] for t in mine}


def test_cli_tokens(tmp_path: object) -> None:
    """`eventrelay tokens create|list|revoke` on the configured database, no server running."""
    import os

    env = {**os.environ, "EVENTRELAY_DATA_DIR": str(tmp_path)}

    def run(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "eventrelay", "tokens", *args],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout

    subprocess.run([sys.executable, "-m", "eventrelay", "migrate"], env=env, check=True)
    out = run("create", "--role", "editor", "--name", "deploy-bot")
    token = out.strip().splitlines()[-1]
    assert token.startswith("ert_") and " " not in token
    listed = run("list")
    assert "deploy-bot" in listed and "editor" in listed
    assert token not in listed
    token_id = listed.split()[0]
    assert "revoked" in run("revoke", token_id)
    assert "revoked 20" in run("list")
