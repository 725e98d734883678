"""Sources admin API: CRUD, write keys, deletion rules."""

from __future__ import annotations

from tests.support.api import Api
from tests.support.examples import valid_configs


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
