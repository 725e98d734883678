"""The catalog: every destination type eventrelay knows, by its slug."""

from __future__ import annotations

from typing import Any

from eventrelay.destinations import (
    bigquery,
    ga4,
    gcs,
    google_ads,
    linkedin,
    meta_capi,
    pinterest,
    redshift,
    s3,
    snapchat,
    snowflake,
    the_trade_desk,
    tiktok,
    webhook,
)
from eventrelay.destinations.base import Destination

_MODULES = (
    ga4,
    meta_capi,
    google_ads,
    tiktok,
    pinterest,
    snapchat,
    linkedin,
    the_trade_desk,
    webhook,
    bigquery,
    snowflake,
    s3,
    gcs,
    redshift,
)

DESTINATIONS: dict[str, Destination] = {m.destination.type: m.destination for m in _MODULES}


def get(type_: str) -> Destination | None:
    return DESTINATIONS.get(type_)


def _mark_secrets(node: Any, path: tuple[str, ...], found: list[str]) -> None:
    """Tag secret fields (SecretStr renders as format=password) with x-secret: true."""
    if isinstance(node, dict):
        if node.get("format") == "password":
            node["x-secret"] = True
            found.append(".".join(path))
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    _mark_secrets(sub, (*path, name), found)
            elif key == "additionalProperties":
                _mark_secrets(value, (*path, "*"), found)
            elif key in ("anyOf", "allOf", "oneOf") and isinstance(value, list):
                for sub in value:
                    _mark_secrets(sub, path, found)
            elif key == "$defs" and isinstance(value, dict):
                for sub in value.values():
                    _mark_secrets(sub, (), [])


def config_schema(destination: Destination) -> tuple[dict[str, Any], list[str]]:
    """The JSON Schema of a type's config (the model that validates it) and its secret fields."""
    schema = destination.Settings.model_json_schema(by_alias=True)
    found: list[str] = []
    _mark_secrets(schema, (), found)
    # Secrets inside $defs (nested models) are reported by walking resolved references.
    for name, sub in schema.get("properties", {}).items():
        ref = sub.get("$ref") or next(
            (s.get("$ref") for s in sub.get("anyOf", []) if "$ref" in s), None
        )
        if ref:
            target = schema["$defs"][ref.rsplit("/", 1)[-1]]
            for prop, spec in target.get("properties", {}).items():
                if spec.get("x-secret"):
                    found.append(f"{name}.{prop}")
    return schema, sorted(set(found))


def catalog_entry(destination: Destination) -> dict[str, Any]:
    schema, secret_fields = config_schema(destination)
    return {
        "type": destination.type,
        "title": destination.title,
        "vendor": destination.vendor,
        "api": destination.api,
        "category": destination.category,
        "docs_url": destination.docs_url,
        "api_version": destination.api_version,
        "default_consent_categories": list(destination.default_consent),
        "batching": {
            "supported": destination.max_batch > 1,
            "max_events": destination.max_batch,
            "max_bytes": destination.max_batch_bytes,
        },
        "delivery": "available" if destination.delivers else "planned",
        # File-loading types need their client libraries: pip install 'eventrelay[<extra>]'.
        "requires_extra": getattr(destination, "extra", None),
        "secret_fields": secret_fields,
        "config_schema": schema,
    }
