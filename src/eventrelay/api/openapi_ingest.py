"""OpenAPI description of the ingest endpoints (served by a plain ASGI handler, so FastAPI does
not see them): documented in /openapi.json with the rest."""

from __future__ import annotations

from typing import Any

from eventrelay.api.ingest_http import DOCUMENTED_PATHS, EVENT_PATHS

_ID = {"type": "string", "minLength": 1, "maxLength": 1024}
_TIME = {"type": "string", "format": "date-time"}
_EVENT: dict[str, Any] = {
    "type": "object",
    "description": "A Segment-spec event (https://segment.com/docs/connections/spec/).",
    "properties": {
        "userId": _ID,
        "anonymousId": _ID,
        "messageId": {"type": "string", "maxLength": 100},
        "timestamp": _TIME,
        "originalTimestamp": _TIME,
        "sentAt": _TIME,
        "context": {"type": "object"},
        "integrations": {"type": "object"},
        "properties": {"type": "object"},
        "traits": {"type": "object"},
    },
    # userId, anonymousId or both.
    "anyOf": [{"required": ["userId"]}, {"required": ["anonymousId"]}],
    "additionalProperties": True,
}
# What each type adds to the common fields (core/events.py checks the same).
_BY_KIND: dict[str, dict[str, Any]] = {
    "track": {
        "properties": {
            "event": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S"}
        },
        "required": ["event"],
    },
    "identify": {},
    "page": {"properties": {"name": {"type": "string"}, "category": {"type": "string"}}},
    "screen": {"properties": {"name": {"type": "string"}, "category": {"type": "string"}}},
    "group": {"properties": {"groupId": _ID}, "required": ["groupId"]},
    "alias": {"properties": {"previousId": _ID}, "required": ["previousId"]},
}


def event_schema(kind: str) -> dict[str, Any]:
    extra = _BY_KIND[kind]
    schema = {
        **_EVENT,
        "properties": {**_EVENT["properties"], **extra.get("properties", {})},
    }
    if "required" in extra:
        schema["required"] = extra["required"]
    return schema


_BATCH_ITEM = {
    **_EVENT,
    "properties": {
        **_EVENT["properties"],
        "type": {"type": "string", "enum": sorted(_BY_KIND)},
        "event": {"type": "string", "minLength": 1, "maxLength": 200},
    },
    "required": ["type"],
}
_RESPONSES: dict[str, Any] = {
    "200": {
        "description": "Accepted and durable. With invalid events in a batch: "
        '{"success": true, "accepted": n, "rejected": [{"index", "field", "message"}]}',
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
    "400": {
        "description": 'Invalid JSON, or no valid event: {"code", "message", "details"?}',
    },
    "401": {"description": "Missing or unknown write key"},
    "403": {"description": "Origin not allowed for this source"},
    "413": {"description": "Over 32 KB per event, 500 KB or 2,500 events per batch"},
    "503": {"description": "Events could not be stored; retry"},
}


def add_ingest_paths(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["writeKey"] = {
        "type": "http",
        "scheme": "basic",
        "description": "The source's write key as username, empty password.",
    }
    for path in DOCUMENTED_PATHS:
        kind = EVENT_PATHS[path]
        body = (
            {
                "type": "object",
                "properties": {
                    "batch": {"type": "array", "items": _BATCH_ITEM, "maxItems": 2500},
                    "sentAt": {"type": "string", "format": "date-time"},
                    "context": {"type": "object"},
                },
                "required": ["batch"],
            }
            if kind == "batch"
            else event_schema(kind)
        )
        schema["paths"][path] = {
            "post": {
                "tags": ["ingest"],
                "summary": f"Send {'a batch of events' if kind == 'batch' else f'a {kind} event'}",
                "operationId": f"ingest_{kind}",
                "security": [{"writeKey": []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                },
                "responses": _RESPONSES,
            }
        }
