"""/docs works offline and /openapi.json describes the API precisely (issue 10.10)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from tests.support.api import Api


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


async def test_docs_load_their_assets_from_this_server(api: Api) -> None:
    r = await api.client.get("/docs")
    assert r.status_code == 200
    parser = _Assets()
    parser.feed(r.text)
    assert len(parser.urls) >= 3  # script, stylesheet, icon
    for url in parser.urls:
        assert url.startswith("/"), f"{url} is not served by eventrelay"
        asset = await api.client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
    assert re.search(r"https?://", r.text.split("<script>")[0]) is None
    # The UI reads the document from this server too.
    assert "'/openapi.json'" in r.text or '"/openapi.json"' in r.text


async def _spec(api: Api) -> dict[str, Any]:
    r = await api.client.get("/openapi.json")
    assert r.status_code == 200
    spec: dict[str, Any] = r.json()
    return spec


NO_AUTH = {
    "/v1/admin/auth/login",
    "/v1/admin/auth/refresh",
    "/v1/admin/auth/logout",
    "/v1/admin/auth/setup",
}


async def test_security_schemes_are_declared(api: Api) -> None:
    spec = await _spec(api)
    schemes = spec["components"]["securitySchemes"]
    assert schemes["adminToken"]["type"] == "http"
    assert schemes["adminToken"]["scheme"] == "bearer"
    assert schemes["writeKey"] == {**schemes["writeKey"], "type": "http", "scheme": "basic"}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if path in NO_AUTH:
                # Login and what stands in for it (a refresh token, a one-time setup link).
                assert operation.get("security") == [], (method, path)
            elif path.startswith("/v1/admin"):
                assert operation.get("security") == [{"adminToken": []}], (method, path)
            elif path in ("/v1/track", "/v1/batch"):
                assert operation.get("security") == [{"writeKey": []}], (method, path)


async def test_names_in_the_document_are_clean(api: Api) -> None:
    spec = await _spec(api)
    for path, item in spec["paths"].items():
        assert "type_" not in path
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                assert not parameter["name"].endswith("_"), (path, parameter["name"])
    for name in spec["components"]["schemas"]:
        assert re.fullmatch(r"[A-Za-z0-9]+", name), name
    assert "AuditEntryPage" in spec["components"]["schemas"]
    assert (await api.get("/v1/admin/catalog/ga4")).json()["type"] == "ga4"


async def test_ingest_bodies_say_what_each_type_requires(api: Api) -> None:
    spec = await _spec(api)

    def body(path: str) -> dict[str, Any]:
        schema: dict[str, Any] = spec["paths"][path]["post"]["requestBody"]["content"][
            "application/json"
        ]["schema"]
        return schema

    assert body("/v1/track")["required"] == ["event"]
    assert body("/v1/group")["required"] == ["groupId"]
    assert body("/v1/alias")["required"] == ["previousId"]
    assert "required" not in body("/v1/identify")
    assert body("/v1/batch")["required"] == ["batch"]
    for path in ("/v1/track", "/v1/identify", "/v1/page"):
        assert {"required": ["userId"]} in body(path)["anyOf"]


async def test_operation_ids_are_unique(api: Api) -> None:
    """Links and generated clients address operations by id: two routes with one function name
    in different modules once gave both `plan_update`."""
    spec = await _spec(api)
    ids = [
        operation["operationId"]
        for item in spec["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    ]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
