"""Issue 9.4: NUL characters in admin input are refused once, at the edge of the admin API:
a path id with one is a 404, a query parameter or body string with one a 422 at its field.
PostgreSQL cannot store NUL (it answered 500); SQLite stored it. Both shapes now agree."""

from __future__ import annotations

import pytest

from tests.support.api import Api

PATHS = [
    "/v1/admin/integrations/int_abc%00def",
    "/v1/admin/integrations/int_abc%00/metrics",
    "/v1/admin/integrations/int_abc%00/failures",
    "/v1/admin/sources/src_%00",
    "/v1/admin/catalog/webhook%00",
]


@pytest.mark.parametrize("path", PATHS)
async def test_a_path_id_with_nul_is_not_found(api: Api, path: str) -> None:
    r = await api.get(path)
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/admin/integrations?source_id=src_%00", "source_id"),
        ("/v1/admin/integrations?type=web%00hook", "type"),
        ("/v1/admin/audit-log?resource_id=%00", "resource_id"),
        ("/v1/admin/sources?cursor=%00", "cursor"),
    ],
)
async def test_a_query_parameter_with_nul_is_invalid(api: Api, path: str, field: str) -> None:
    r = await api.get(path)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"] == field


async def test_body_strings_with_nul_are_invalid(api: Api) -> None:
    r = await api.post("/v1/admin/sources", json={"name": "Web\x00site"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"] == [
        {"field": "name", "message": "must not contain a NUL character"}
    ]
    r = await api.post("/v1/admin/tokens", json={"name": "ops\x00", "role": "viewer"})
    assert r.status_code == 422, r.text
    src = await api.make_source()
    r = await api.post(
        "/v1/admin/integrations",
        json={
            "source_id": src["id"],
            "type": "webhook",
            "name": "hook",
            "config": {"url": "https://h.example.invalid/x", "event_names": ["a", "b\x00"]},
        },
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"] == "config.event_names.1"
    r = await api.put(f"/v1/admin/sources/{src['id']}", json={"name": "x\x00"})
    assert r.status_code == 422, r.text
    # Nothing was stored, and the rest of the API works as before.
    r = await api.get("/v1/admin/sources")
    assert [s["name"] for s in r.json()["data"]] == ["Web"]


async def test_an_escaped_backslash_is_not_a_nul(api: Api) -> None:
    r = await api.post("/v1/admin/sources", json={"name": "back\\u0000slash"})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "back\\u0000slash"
