"""OpenAPI links: how the id a creating request returns feeds the operations on that resource
(https://spec.openapis.org/oas/v3.1.0#link-object). Clients and tools that follow links
(schemathesis' stateful tests among them) go from "create a source" to "rotate its write key"
or "create an integration for it" without guessing."""

from __future__ import annotations

from typing import Any

ID = "$response.body#/id"

# Created resource (its create operation) -> links beyond "every operation under its path".
_EXTRA: dict[str, dict[str, dict[str, Any]]] = {
    "create_source": {
        "CreateIntegration": {
            "operationId": "create_integration",
            "requestBody": {"source_id": ID},
            "description": "Create an integration for this source.",
        },
        "RevokeFirstWriteKey": {
            "operationId": "revoke_write_key",
            "parameters": {"source_id": ID, "key_id": "$response.body#/write_keys/0/id"},
        },
        "ListItsIntegrations": {
            "operationId": "list_integrations",
            "parameters": {"source_id": ID},
        },
    },
}


def add_links(schema: dict[str, Any]) -> None:
    """For every creating POST (201) on a collection path, a link to each operation on
    `<path>/{<param>}...` with that path parameter taken from the created id."""
    paths: dict[str, dict[str, Any]] = schema.get("paths", {})
    for path, item in paths.items():
        create = item.get("post")
        if not create or "201" not in create.get("responses", {}):
            continue
        links: dict[str, Any] = {}
        for other_path, other_item in paths.items():
            if not other_path.startswith(path + "/{"):
                continue
            param = other_path[len(path) + 2 :].split("}", 1)[0]
            if "{" in other_path[len(path) + 2 + len(param) + 1 :]:
                continue  # needs a second id (handled in _EXTRA where it exists)
            for operation in other_item.values():
                name = operation["operationId"]
                links["".join(p.title() for p in name.split("_"))] = {
                    "operationId": name,
                    "parameters": {param: ID},
                }
        links.update(_EXTRA.get(create["operationId"], {}))
        if links:
            create["responses"]["201"]["links"] = links
