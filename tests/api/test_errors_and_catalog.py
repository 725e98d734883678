"""Error envelope, limits, health, OpenAPI and the catalog."""

from __future__ import annotations

from tests.support.api import Api

TYPES = {
    "ga4",
    "meta_capi",
    "google_ads",
    "tiktok",
    "pinterest",
    "snapchat",
    "linkedin",
    "the_trade_desk",
    "webhook",
    "bigquery",
    "snowflake",
    "s3",
    "gcs",
    "redshift",
}


async def test_invalid_json_is_400(api: Api) -> None:
    r = await api.post(
        "/v1/admin/sources", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_json"


async def test_oversized_body_is_413(api: Api) -> None:
    r = await api.post("/v1/admin/sources", json={"name": "x" * (2 * 1024 * 1024)})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


async def test_unknown_route_uses_envelope(api: Api) -> None:
    r = await api.get("/v1/admin/nothing-here")
    assert r.status_code == 404
    assert r.json() == {"error": {"code": "not_found", "message": "Not Found"}}


async def test_health(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    assert (await api.client.get("/readyz")).json() == {"status": "ready"}


async def test_openapi_and_docs(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    assert "/v1/admin/integrations" in spec["paths"]
    assert (await api.client.get("/docs")).status_code == 200


async def test_catalog_lists_all_types_with_schemas(api: Api) -> None:
    r = await api.get("/v1/admin/catalog")
    entries = {e["type"]: e for e in r.json()["data"]}
    assert set(entries) == TYPES
    ga4 = entries["ga4"]
    assert ga4["title"] == "Google Analytics 4"
    assert ga4["api"] == "Measurement Protocol"
    assert ga4["default_consent_categories"] == ["analytics"]
    assert ga4["batching"]["max_events"] == 25
    assert ga4["secret_fields"] == ["api_secret"]
    schema = ga4["config_schema"]
    assert schema["required"] == ["measurement_id", "api_secret"]
    assert schema["properties"]["api_secret"]["x-secret"] is True
    assert schema["properties"]["api_secret"]["writeOnly"] is True
    assert "x-secret" not in schema["properties"]["measurement_id"]
    assert entries["webhook"]["secret_fields"] == ["headers.*", "signing_secret"]
    assert entries["google_ads"]["secret_fields"] == [
        "developer_token",
        "oauth_credentials.client_secret",
        "oauth_credentials.refresh_token",
    ]
    assert entries["linkedin"]["secret_fields"] == [
        "access_token",
        "client_secret",
        "refresh_token",
    ]
    for type_ in (
        "ga4",
        "meta_capi",
        "google_ads",
        "tiktok",
        "pinterest",
        "snapchat",
        "linkedin",
        "the_trade_desk",
        "webhook",
    ):
        assert entries[type_]["delivery"] == "available", type_
    # New optional fields are listed by the same schema that validates them.
    for type_ in (
        "ga4",
        "meta_capi",
        "tiktok",
        "pinterest",
        "snapchat",
        "the_trade_desk",
        "google_ads",
    ):
        assert "event_mapping" in entries[type_]["config_schema"]["properties"], type_
    assert "region" in entries["ga4"]["config_schema"]["properties"]
    assert entries["meta_capi"]["default_consent_categories"] == ["advertising"]
    assert entries["s3"]["default_consent_categories"] == []
    one = await api.get("/v1/admin/catalog/meta_capi")
    assert one.json() == entries["meta_capi"]
    assert (await api.get("/v1/admin/catalog/myspace")).status_code == 404


async def test_catalog_schema_is_the_validating_model(api: Api) -> None:
    """The schema served is the one that validates: its pattern rejects what the API rejects."""
    import re

    schema = (await api.get("/v1/admin/catalog/ga4")).json()["config_schema"]
    pattern = schema["properties"]["measurement_id"]["pattern"]
    assert re.match(pattern, "G-ABC123")
    assert not re.match(pattern, "UA-1-1")
