"""Sources admin API: CRUD, write keys, deletion rules."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.api import Api
from tests.support.examples import valid_configs
from tests.support.pipeline import basic


async def test_create_get_update_source(api: Api) -> None:
    r = await api.post("/v1/admin/sources", json={"name": "Web shop"})
    assert r.status_code == 201
    source = r.json()
    assert source["id"].startswith("src_")
    assert source["write_key"].startswith("wk_")
    assert source["consent_default"] == "deny"
    assert source["allowed_origins"] == ["*"]
    assert [k["key"] for k in source["write_keys"]] == [source["write_key"]]
    assert (await api.get(f"/v1/admin/sources/{source['id']}")).json() == source
    r = await api.put(
        f"/v1/admin/sources/{source['id']}",
        json={
            "name": "Shop",
            "consent_default": "allow",
            "allowed_origins": ["https://shop.example.com/"],
        },
    )
    assert r.status_code == 200
    updated = r.json()
    assert updated["name"] == "Shop"
    assert updated["consent_default"] == "allow"
    assert updated["allowed_origins"] == ["https://shop.example.com"]
    assert updated["write_key"] == source["write_key"]


async def test_source_validation(api: Api) -> None:
    r = await api.post("/v1/admin/sources", json={"name": "  "})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "name"
    r = await api.post("/v1/admin/sources", json={"name": "x", "consent_default": "maybe"})
    assert r.json()["error"]["details"][0]["field"] == "consent_default"
    r = await api.post("/v1/admin/sources", json={"name": "x", "allowed_origins": ["not a url"]})
    assert r.json()["error"]["details"][0]["field"] == "allowed_origins.0"


async def test_list_sources_paginates(api: Api) -> None:
    ids = [(await api.make_source(f"s{i}"))["id"] for i in range(3)]
    page = (await api.get("/v1/admin/sources", params={"limit": 2})).json()
    assert [s["id"] for s in page["data"]] == ids[:2] and page["has_more"]
    page = (await api.get("/v1/admin/sources", params={"cursor": page["next_cursor"]})).json()
    assert [s["id"] for s in page["data"]] == ids[2:] and not page["has_more"]


async def test_rotate_and_revoke_write_keys(api: Api) -> None:
    source = await api.make_source()
    old_key = source["write_keys"][0]
    r = await api.post(f"/v1/admin/sources/{source['id']}/write-keys/rotate")
    assert r.status_code == 201
    rotated = r.json()
    assert len(rotated["write_keys"]) == 2
    assert rotated["write_key"] != old_key["key"]
    assert all(k["revoked_at"] is None for k in rotated["write_keys"])  # old key still works
    r = await api.delete(f"/v1/admin/sources/{source['id']}/write-keys/{old_key['id']}")
    assert r.status_code == 204
    after = (await api.get(f"/v1/admin/sources/{source['id']}")).json()
    revoked = {k["id"]: k["revoked_at"] for k in after["write_keys"]}
    assert revoked[old_key["id"]] is not None
    assert after["write_key"] == rotated["write_key"]
    r = await api.delete(f"/v1/admin/sources/{source['id']}/write-keys/{old_key['id']}")
    assert r.status_code == 404


async def test_delete_source_with_integrations_is_409(api: Api) -> None:
    source = await api.make_source()
    integration = await api.make_integration(
        source["id"], type="ga4", config=valid_configs()["ga4"]
    )
    r = await api.delete(f"/v1/admin/sources/{source['id']}")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "conflict"
    await api.delete(f"/v1/admin/integrations/{integration['id']}")
    assert (await api.delete(f"/v1/admin/sources/{source['id']}")).status_code == 204
    assert (await api.get(f"/v1/admin/sources/{source['id']}")).status_code == 404


async def _track(api: Api, write_key: str) -> int:
    r = await api.client.post(
        "/v1/track", json={"userId": "u", "event": "x"}, headers=basic(write_key)
    )
    return r.status_code


async def test_rotation_retires_older_keys_after_the_grace_period(api: Api) -> None:
    source = await api.make_source()
    path = f"/v1/admin/sources/{source['id']}/write-keys/rotate"
    first = source["write_key"]
    # Default grace: one day; the old key keeps working meanwhile.
    rotated = (await api.post(path)).json()
    keys = {k["key"]: k for k in rotated["write_keys"]}
    expires = datetime.fromisoformat(keys[first]["expires_at"])
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(days=1)
    assert keys[rotated["write_key"]]["expires_at"] is None
    assert await _track(api, first) == 200
    # A short grace: the older keys stop once it is over.
    r = await api.post(path, json={"grace_seconds": 1})
    assert r.status_code == 201, r.text
    newest = r.json()["write_key"]
    assert await _track(api, rotated["write_key"]) == 200
    await asyncio.sleep(1.2)
    assert await _track(api, first) == 401
    assert await _track(api, rotated["write_key"]) == 401
    assert await _track(api, newest) == 200
    assert (await api.get(f"/v1/admin/sources/{source['id']}")).json()["write_key"] == newest
    # Zero: the older key stops at once.
    latest = (await api.post(path, json={"grace_seconds": 0})).json()["write_key"]
    assert await _track(api, newest) == 401
    assert await _track(api, latest) == 200


async def test_rotation_keeps_a_bounded_number_of_working_keys(api: Api) -> None:
    source = await api.make_source()
    path = f"/v1/admin/sources/{source['id']}/write-keys/rotate"
    for _ in range(6):
        assert (await api.post(path)).status_code == 201
    keys = (await api.get(f"/v1/admin/sources/{source['id']}")).json()["write_keys"]
    working = [k for k in keys if k["revoked_at"] is None]
    assert len(keys) == 7
    assert [k["key"] for k in working] == [k["key"] for k in keys[-3:]]
    for key in keys:
        assert await _track(api, key["key"]) == (200 if key in working else 401)
    audit = (await api.get("/v1/admin/audit-log", params={"resource_id": source["id"]})).json()
    revoked = [
        key_id
        for e in audit["data"]
        if "revoked_write_key_ids" in e["changes"]
        for key_id in e["changes"]["revoked_write_key_ids"]["old"]
    ]
    assert sorted(revoked) == sorted(k["id"] for k in keys[:4])


@pytest.mark.parametrize("body", [{"grace_seconds": -1}, {"grace_seconds": 31 * 86400}])
async def test_rotation_grace_out_of_range_is_422(api: Api, body: dict[str, int]) -> None:
    source = await api.make_source()
    r = await api.post(f"/v1/admin/sources/{source['id']}/write-keys/rotate", json=body)
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "grace_seconds"
