"""Audit log: every change recorded with a masked diff, actor, ip and user agent."""

from __future__ import annotations

from tests.support.api import Api
from tests.support.examples import valid_configs


async def test_integration_changes_are_audited_with_masked_secrets(api: Api) -> None:
    source = await api.make_source()
    config = {"pixel_id": "1234567890", "access_token": "EAA-first-token"}
    created = await api.make_integration(source["id"], type="meta_capi", config=config)
    await api.put(
        f"/v1/admin/integrations/{created['id']}",
        json={
            "name": "Renamed",
            "config": {"pixel_id": "999999", "access_token": "EAA-second-token"},
        },
        headers={"User-Agent": "audit-test/1.0"},
    )
    await api.delete(f"/v1/admin/integrations/{created['id']}")
    r = await api.get(
        "/v1/admin/audit-log",
        params={"resource_type": "integration", "resource_id": created["id"]},
    )
    assert r.status_code == 200
    entries = r.json()["data"]
    assert [e["action"] for e in entries] == [
        "integration.deleted",
        "integration.updated",
        "integration.created",
    ]
    updated = entries[1]
    assert updated["changes"]["name"] == {"old": "Integration", "new": "Renamed"}
    assert updated["changes"]["config.pixel_id"] == {"old": "1234567890", "new": "999999"}
    assert updated["changes"]["config.access_token"] == {"old": "***", "new": "***"}
    assert updated["actor"]["name"] == "owner"
    assert updated["actor"]["token_id"].startswith("tok_")
    assert updated["ip"] == "203.0.113.9"
    assert updated["user_agent"] == "audit-test/1.0"
    assert updated["resource_type"] == "integration"
    assert updated["timestamp"].endswith("Z")
    text = r.text
    assert "EAA-first-token" not in text and "EAA-second-token" not in text


async def test_unchanged_secret_is_not_reported(api: Api) -> None:
    source = await api.make_source()
    created = await api.make_integration(source["id"], type="ga4", config=valid_configs()["ga4"])
    await api.put(
        f"/v1/admin/integrations/{created['id']}",
        json={"config": {"measurement_id": "G-NEWID123", "api_secret": "***"}},
    )
    entries = (await api.get("/v1/admin/audit-log", params={"resource_id": created["id"]})).json()[
        "data"
    ]
    assert set(entries[0]["changes"]) == {"config.measurement_id"}


async def test_sources_and_tokens_are_audited(api: Api) -> None:
    source = await api.make_source()
    await api.put(f"/v1/admin/sources/{source['id']}", json={"name": "Renamed"})
    await api.post(f"/v1/admin/sources/{source['id']}/write-keys/rotate")
    token = (await api.post("/v1/admin/tokens", json={"name": "bot", "role": "viewer"})).json()
    await api.delete(f"/v1/admin/tokens/{token['id']}")
    entries = (await api.get("/v1/admin/audit-log", params={"limit": 100})).json()["data"]
    actions = [e["action"] for e in entries]
    for action in (
        "source.created",
        "source.updated",
        "source.write_key_created",
        "token.created",
        "token.revoked",
    ):
        assert action in actions
    assert token["token"] not in str(entries)


async def test_audit_log_paginates_newest_first(api: Api) -> None:
    for i in range(4):
        await api.make_source(f"s{i}")
    page = (
        await api.get("/v1/admin/audit-log", params={"limit": 2, "resource_type": "source"})
    ).json()
    assert len(page["data"]) == 2 and page["has_more"]
    rest = (
        await api.get(
            "/v1/admin/audit-log",
            params={"resource_type": "source", "cursor": page["next_cursor"]},
        )
    ).json()
    assert len(rest["data"]) == 2 and not rest["has_more"]
    names = [e["changes"]["name"]["new"] for e in page["data"] + rest["data"]]
    assert names == ["s3", "s2", "s1", "s0"]
