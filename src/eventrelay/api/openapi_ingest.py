"""OpenAPI description of the ingest endpoints (served by a plain ASGI handler, so FastAPI does
not see them): documented in /openapi.json with the rest."""

from __future__ import annotations

from typing import Any

from eventrelay.api.ingest_http import DOCUMENTED_PATHS, EVENT_PATHS

_EVENT = {
    "type": "object",
    "description": "A Segment-spec event (https://segment.com/docs/connections/spec/).",
    "properties": {
        "userId": {"type": "string"},
        "anonymousId": {"type": "string"},
        "messageId": {"type": "string", "maxLength": 100},
        "timestamp": {"type": "string", "format": "date-time"},
        "context": {"type": "object"},
    },
    "additionalProperties": True,
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
                    "batch": {"type": "array", "items": _EVENT, "maxItems": 2500},
                    "sentAt": {"type": "string", "format": "date-time"},
                    "context": {"type": "object"},
                },
                "required": ["batch"],
            }
            if kind == "batch"
            else _EVENT
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
