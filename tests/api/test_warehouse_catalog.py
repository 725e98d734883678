"""The catalog entries of the warehouse types, and the 422 when their client libraries (an
optional extra) are missing."""

from __future__ import annotations

import pytest

from eventrelay.destinations import registry
from tests.support.api import Api
from tests.support.examples import valid_configs


async def test_bigquery_and_snowflake_deliver_and_name_their_extra(api: Api) -> None:
    entries = {e["type"]: e for e in (await api.get("/v1/admin/catalog")).json()["data"]}
    for type_ in ("bigquery", "snowflake"):
        entry = entries[type_]
        assert entry["delivery"] == "available", type_
        assert entry["requires_extra"] == type_
        props = entry["config_schema"]["properties"]
        assert {"batch_size", "batch_interval_ms", "load_mode", "layout"} <= set(props)
    assert entries["bigquery"]["secret_fields"] == ["service_account_json"]
    assert "insert_method" in entries["bigquery"]["config_schema"]["properties"]
    assert set(entries["snowflake"]["secret_fields"]) == {"private_key", "private_key_passphrase"}


@pytest.mark.parametrize("type_", ["bigquery", "snowflake"])
async def test_a_missing_extra_is_a_422_naming_it(
    api: Api, type_: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    destination = registry.get(type_)
    monkeypatch.setattr(type(destination), "extra_modules", ("eventrelay_not_installed",))
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
    (detail,) = r.json()["error"]["details"]
    assert detail["field"] == "type"
    assert f"pip install 'eventrelay[{type_}]'" in detail["message"]
