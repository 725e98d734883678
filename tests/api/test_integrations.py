"""Integrations admin API: the seed-000 contract, per-type config, secrets, pagination."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from eventrelay.control.integrations import validate_config
from eventrelay.destinations import registry
from eventrelay.errors import ApiError
from eventrelay.store.tables import integrations
from tests.support.api import Api
from tests.support.examples import SECRET_PATHS, bad_configs, valid_configs

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
SEED_OBJECT_FIELDS = {
    "id",
    "source_id",
    "type",
    "name",
    "enabled",
    "config",
    "consent_categories",
    "created_at",
    "updated_at",
}
SEED_LIST_FIELDS = {"id", "source_id", "type", "name", "enabled", "created_at", "updated_at"}


def dig(doc: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        doc = doc[part]
    return doc


async def raw_row(api: Api, integration_id: str) -> dict[str, Any]:
    async with api.runtime.db.read() as conn:
        row = (
            await conn.execute(select(integrations).where(integrations.c.id == integration_id))
        ).first()
    assert row is not None
    return dict(row._mapping)


async def test_seed_create_example(api: Api) -> None:
    source = await api.make_source()
    r = await api.post(
        "/v1/admin/integrations",
        json={
            "source_id": source["id"],
            "type": "meta_capi",
            "name": "Meta CAPI - Production",
            "enabled": True,
            "config": {"pixel_id": "1234567890", "access_token": "EAAxxxxxxxxx..."},
            "consent_categories": ["advertising", "marketing"],
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) >= SEED_OBJECT_FIELDS
    assert body["id"].startswith("int_")
    assert body["source_id"] == source["id"]
    assert body["type"] == "meta_capi"
    assert body["name"] == "Meta CAPI - Production"
    assert body["enabled"] is True
    assert body["config"] == {"pixel_id": "1234567890", "access_token": "***"}
    assert body["consent_categories"] == ["advertising", "marketing"]
    assert ISO.match(body["created_at"]) and ISO.match(body["updated_at"])
    assert body["status"] == "active"
    assert body["last_error_message"] is None
    assert body["last_error_at"] is None
    assert body["last_delivery_at"] is None

    got = await api.get(f"/v1/admin/integrations/{body['id']}")
    assert got.status_code == 200
    assert got.json() == body


async def test_seed_list_example_shape(api: Api) -> None:
    source = await api.make_source()
    created = await api.make_integration(
        source["id"], type="ga4", name="GA4 Production", config=valid_configs()["ga4"]
    )
    r = await api.get(f"/v1/admin/integrations?source_id={source['id']}")
    assert r.status_code == 200
    page = r.json()
    assert set(page) == {"data", "next_cursor", "has_more"}
    assert page["next_cursor"] is None and page["has_more"] is False
    [item] = page["data"]
    assert set(item) >= SEED_LIST_FIELDS
    assert "config" not in item  # the list shows summaries, as in the seed
    assert item["id"] == created["id"] and item["type"] == "ga4"
    assert item["status"] == "active"


async def test_seed_update_example(api: Api) -> None:
    source = await api.make_source()
    created = await api.make_integration(
        source["id"],
        type="meta_capi",
        config={"pixel_id": "1234567890", "access_token": "EAAxxxxxxxxx..."},
        consent_categories=["advertising", "marketing"],
    )
    r = await api.put(
        f"/v1/admin/integrations/{created['id']}",
        json={
            "name": "Meta CAPI - Updated",
            "enabled": False,
            "config": {"pixel_id": "1234567890", "access_token": "EAAyyyyyyyyyy..."},
            "consent_categories": ["advertising"],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "Meta CAPI - Updated"
    assert body["enabled"] is False
    assert body["status"] == "paused"
    assert body["config"] == {"pixel_id": "1234567890", "access_token": "***"}
    assert body["consent_categories"] == ["advertising"]
    row = await raw_row(api, created["id"])
    assert api.runtime.vault.decrypt_json(row["secrets"]) == {"/access_token": "EAAyyyyyyyyyy..."}


async def test_seed_delete_example(api: Api) -> None:
    source = await api.make_source()
    created = await api.make_integration(source["id"], type="ga4", config=valid_configs()["ga4"])
    assert (await api.delete(f"/v1/admin/integrations/{created['id']}")).status_code == 204
    assert (await api.get(f"/v1/admin/integrations/{created['id']}")).status_code == 404
    assert (await api.delete(f"/v1/admin/integrations/{created['id']}")).status_code == 404
    listed = (await api.get("/v1/admin/integrations")).json()["data"]
    assert created["id"] not in [i["id"] for i in listed]
    # Soft delete: the row stays, so the ID resolves in history and can never be reused.
    row = await raw_row(api, created["id"])
    assert row["deleted_at"] is not None


DELIVERING = sorted(t for t in valid_configs() if registry.DESTINATIONS[t].delivers)
PLANNED = sorted(t for t in valid_configs() if not registry.DESTINATIONS[t].delivers)


@pytest.mark.parametrize("type_", DELIVERING)
async def test_every_type_creates_with_masked_secrets(api: Api, type_: str) -> None:
    source = await api.make_source()
    config = valid_configs()[type_]
    body = await api.make_integration(source["id"], type=type_, config=config)
    for path in SECRET_PATHS[type_]:
        assert dig(body["config"], path) == "***", path
    row = await raw_row(api, body["id"])
    stored = api.runtime.vault.decrypt_json(row["secrets"])
    assert len(stored) == len(SECRET_PATHS[type_])
    # The raw row holds no plaintext secret anywhere.
    raw = repr(row)
    for path in SECRET_PATHS[type_]:
        secret = dig(config, path)
        assert secret not in raw
        assert secret[:24] not in raw


@pytest.mark.parametrize("type_", PLANNED)
async def test_types_that_cannot_deliver_cannot_be_created(api: Api, type_: str) -> None:
    """A planned type would accept events and deliver none: creating one says so."""
    source = await api.make_source()
    r = await api.post(
        "/v1/admin/integrations",
        json={
            "source_id": source["id"],
            "type": type_,
            "name": "x",
            "config": valid_configs()[type_],
        },
    )
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "type_not_available"
    assert error["details"] == [{"field": "type", "message": f"{type_} cannot deliver events yet"}]
    assert "webhook" in error["message"]  # names the types that do deliver
    catalog = (await api.get(f"/v1/admin/catalog/{type_}")).json()
    assert catalog["delivery"] == "planned"
    assert (await api.get("/v1/admin/integrations")).json()["data"] == []


@pytest.mark.parametrize(("type_", "config", "field"), bad_configs())
async def test_bad_config_is_422_with_the_field(
    api: Api, type_: str, config: dict[str, Any], field: str
) -> None:
    destination = registry.DESTINATIONS[type_]
    if not destination.delivers:
        # Not creatable yet (test above); its config model still validates with the field.
        with pytest.raises(ApiError) as info:
            validate_config(destination, config)
        assert any(d["field"].startswith(field) for d in info.value.details or []), field
        return
    source = await api.make_source()
    r = await api.post(
        "/v1/admin/integrations",
        json={"source_id": source["id"], "type": type_, "name": "x", "config": config},
    )
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    fields = [d["field"] for d in error["details"]]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields
    # Rejected values are never echoed (they may be secrets).
    for value in config.values():
        if isinstance(value, str) and len(value) > 6:
            assert value not in r.text


async def test_every_one_of_13_types_rejects_a_bad_config(api: Api) -> None:
    assert {t for t, _, _ in bad_configs()} == set(valid_configs())


async def test_unknown_type_and_unknown_field(api: Api) -> None:
    source = await api.make_source()
    r = await api.post(
        "/v1/admin/integrations",
        json={"source_id": source["id"], "type": "myspace", "name": "x", "config": {}},
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "type"
    config = {**valid_configs()["ga4"], "measurment_id": "typo"}
    r = await api.post(
        "/v1/admin/integrations",
        json={"source_id": source["id"], "type": "ga4", "name": "x", "config": config},
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0] == {
        "field": "config.measurment_id",
        "message": "is not a known field",
    }


async def test_missing_required_fields(api: Api) -> None:
    r = await api.post("/v1/admin/integrations", json={"type": "ga4"})
    assert r.status_code == 422
    fields = {d["field"] for d in r.json()["error"]["details"]}
    assert {"source_id", "name", "config"} <= fields


async def test_unknown_source_is_422(api: Api) -> None:
    r = await api.post(
        "/v1/admin/integrations",
        json={
            "source_id": "src_doesnotexist",
            "type": "ga4",
            "name": "x",
            "config": valid_configs()["ga4"],
        },
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "source_id"


async def test_put_changes_given_fields_only(api: Api) -> None:
    source = await api.make_source()
    created = await api.make_integration(source["id"], type="ga4", config=valid_configs()["ga4"])
    r = await api.put(f"/v1/admin/integrations/{created['id']}", json={"name": "Renamed"})
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "Renamed"
    assert body["config"] == created["config"]
    assert body["enabled"] is True
    assert body["consent_categories"] == ["analytics"]


async def test_put_with_mask_keeps_stored_secret(api: Api) -> None:
    source = await api.make_source()
    created = await api.make_integration(
        source["id"], type="google_ads", config=valid_configs()["google_ads"]
    )
    config = created["config"]  # as read back: secrets are "***"
    config["conversion_action_id"] = "111"
    r = await api.put(f"/v1/admin/integrations/{created['id']}", json={"config": config})
    assert r.status_code == 200, r.text
    row = await raw_row(api, created["id"])
    assert api.runtime.vault.decrypt_json(row["secrets"]) == {
        "/oauth_credentials/client_secret": "GOCSPX-secret",
        "/oauth_credentials/refresh_token": "1//refresh-token",
    }
    assert row["config"]["conversion_action_id"] == "111"


async def test_mask_without_stored_secret_is_422(api: Api) -> None:
    source = await api.make_source()
    r = await api.post(
        "/v1/admin/integrations",
        json={
            "source_id": source["id"],
            "type": "ga4",
            "name": "x",
            "config": {"measurement_id": "G-ABCDEF", "api_secret": "***"},
        },
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "config.api_secret"


async def test_type_and_source_cannot_change(api: Api) -> None:
    source = await api.make_source()
    other = await api.make_source("Other")
    created = await api.make_integration(source["id"], type="ga4", config=valid_configs()["ga4"])
    r = await api.put(f"/v1/admin/integrations/{created['id']}", json={"type": "meta_capi"})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "type"
    r = await api.put(
        f"/v1/admin/integrations/{created['id']}",
        json={"source_id": other["id"], "name": "x"},
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "source_id"
    # Sending the unchanged values back (PUT of what was read) is fine.
    same = await api.put(
        f"/v1/admin/integrations/{created['id']}",
        json={"type": "ga4", "source_id": source["id"], "name": "Same"},
    )
    assert same.status_code == 200


async def test_empty_or_null_update_is_422(api: Api) -> None:
    source = await api.make_source()
    created = await api.make_integration(source["id"], type="ga4", config=valid_configs()["ga4"])
    assert (await api.put(f"/v1/admin/integrations/{created['id']}", json={})).status_code == 422
    r = await api.put(f"/v1/admin/integrations/{created['id']}", json={"enabled": None})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "enabled"


async def test_consent_categories_defaults_and_validation(api: Api) -> None:
    source = await api.make_source()
    configs = valid_configs()
    expected = {
        "ga4": ["analytics"],
        "meta_capi": ["advertising"],
        "tiktok": ["advertising"],
        "webhook": [],
    }
    for type_, categories in expected.items():
        body = await api.make_integration(source["id"], type=type_, config=configs[type_])
        assert body["consent_categories"] == categories, type_
    body = await api.make_integration(
        source["id"],
        type="ga4",
        config=configs["ga4"],
        consent_categories=["Analytics", "analytics", "MARKETING"],
    )
    assert body["consent_categories"] == ["analytics", "marketing"]
    r = await api.post(
        "/v1/admin/integrations",
        json={
            "source_id": source["id"],
            "type": "ga4",
            "name": "x",
            "config": configs["ga4"],
            "consent_categories": ["analytics", "telepathy"],
        },
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "consent_categories.1"


async def test_org_categories_can_be_customised(api: Api) -> None:
    r = await api.put("/v1/admin/organization", json={"consent_categories": ["analytics", "c0004"]})
    assert r.status_code == 200
    assert r.json()["consent_categories"] == ["analytics", "c0004"]
    source = await api.make_source()
    body = await api.make_integration(
        source["id"],
        type="webhook",
        config=valid_configs()["webhook"],
        consent_categories=["C0004"],
    )
    assert body["consent_categories"] == ["c0004"]


async def test_status_endpoint(api: Api) -> None:
    source = await api.make_source()
    created = await api.make_integration(source["id"], type="ga4", config=valid_configs()["ga4"])
    path = f"/v1/admin/integrations/{created['id']}/status"
    r = await api.post(path, json={"status": "paused"})
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["enabled"]) == ("paused", False)
    r = await api.post(path, json={"status": "active"})
    assert (r.json()["status"], r.json()["enabled"]) == ("active", True)
    r = await api.post(path, json={"status": "error"})
    assert r.status_code == 422


async def test_pagination_and_filters(api: Api) -> None:
    web = await api.make_source("Web")
    app = await api.make_source("App")
    configs = valid_configs()
    made = []
    for i in range(5):
        made.append(
            await api.make_integration(
                web["id"], type="ga4", name=f"ga4-{i}", config=configs["ga4"]
            )
        )
    made.append(
        await api.make_integration(app["id"], type="meta_capi", config=configs["meta_capi"])
    )

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get("/v1/admin/integrations", params=params)).json()
        assert len(page["data"]) <= 2
        seen += [i["id"] for i in page["data"]]
        assert page["has_more"] == (page["next_cursor"] is not None)
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == [m["id"] for m in made]

    by_source = (await api.get("/v1/admin/integrations", params={"source_id": app["id"]})).json()
    assert [i["type"] for i in by_source["data"]] == ["meta_capi"]
    by_type = (await api.get("/v1/admin/integrations", params={"type": "ga4"})).json()
    assert len(by_type["data"]) == 5
    default = (await api.get("/v1/admin/integrations")).json()
    assert len(default["data"]) == 6


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"limit": "x"}])
async def test_limit_out_of_range_is_422(api: Api, params: dict[str, Any]) -> None:
    r = await api.get("/v1/admin/integrations", params=params)
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "limit"


async def test_bad_cursor_is_422(api: Api) -> None:
    r = await api.get("/v1/admin/integrations", params={"cursor": "garbage!"})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "cursor"


async def test_limit_100_default_50(api: Api) -> None:
    source = await api.make_source()
    config = valid_configs()["webhook"]
    for i in range(55):
        await api.make_integration(source["id"], type="webhook", name=f"w{i}", config=config)
    page = (await api.get("/v1/admin/integrations")).json()
    assert len(page["data"]) == 50 and page["has_more"] is True
    page = (await api.get("/v1/admin/integrations", params={"limit": 100})).json()
    assert len(page["data"]) == 55 and page["has_more"] is False
