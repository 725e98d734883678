"""Integrations: validation of per-type config, encryption of secrets, status, audit."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from eventrelay.bus import Change
from eventrelay.control import rules as rules_control
from eventrelay.control.common import Name, diff
from eventrelay.control.load_calls import require_extra
from eventrelay.control.redirects import refuse_redirected_secrets
from eventrelay.core.config_secrets import (
    MASK,
    dotted,
    flatten,
    keep_stored,
    masked_secret_paths,
    split_secrets,
)
from eventrelay.destinations import registry
from eventrelay.destinations.base import Destination, VendorSettings
from eventrelay.errors import ApiError, from_pydantic, invalid, not_found, validation_error
from eventrelay.ids import new_id
from eventrelay.runtime import Runtime
from eventrelay.store import audit, metrics, orgs
from eventrelay.store import integrations as store
from eventrelay.store import sources as source_store
from eventrelay.store.audit import Actor
from eventrelay.timeutil import iso_seconds, utcnow

log = logging.getLogger("eventrelay.control")

Categories = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=50)
]


class IntegrationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source_id: str = Field(max_length=40)
    type: str = Field(max_length=40)
    name: Name
    enabled: bool = True
    config: dict[str, Any]
    consent_categories: Categories | None = Field(
        default=None, description="Omitted: the type's default categories."
    )


class IntegrationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    enabled: bool | None = None
    config: dict[str, Any] | None = None
    consent_categories: Categories | None = None
    # Accepted only when unchanged, so a client may PUT back the object it read.
    type: str | None = None
    source_id: str | None = None


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["active", "paused"]


def status_for(enabled: bool) -> str:
    return "active" if enabled else "paused"


def present_summary(
    row: Mapping[str, Any], filtered: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """A list item. `filtered`: events not sent over the last hour, by reason
    (store.metrics.filtered_last_hour), so a silent filter shows where the integration shows."""
    return {
        "id": row["id"],
        "source_id": row["source_id"],
        "type": row["type"],
        "name": row["name"],
        "enabled": row["enabled"],
        "status": row["status"],
        "last_error_message": row["last_error_message"],
        "last_error_at": iso_seconds(row["last_error_at"]),
        "filtered_last_hour": dict(filtered or {}),
        "created_at": iso_seconds(row["created_at"]),
        "updated_at": iso_seconds(row["updated_at"]),
    }


def present(row: Mapping[str, Any], filtered: Mapping[str, int] | None = None) -> dict[str, Any]:
    return {
        **present_summary(row, filtered),
        "config": row["config"],
        "consent_categories": list(row["consent_categories"]),
        "last_delivery_at": iso_seconds(row["last_delivery_at"]),
    }


async def _present_with_counts(conn: AsyncConnection, row: Mapping[str, Any]) -> dict[str, Any]:
    filtered = await metrics.filtered_last_hour(conn, [str(row["id"])])
    return present(row, filtered.get(str(row["id"])))


def destination_for(type_: str) -> Destination:
    destination = registry.get(type_)
    if destination is None:
        known = ", ".join(sorted(registry.DESTINATIONS))
        raise invalid("type", f"unknown integration type {type_!r}; known types: {known}")
    return destination


def validate_config(destination: Destination, config: Mapping[str, Any]) -> VendorSettings:
    try:
        settings = destination.Settings.model_validate(config)
    except ValidationError as exc:
        raise from_pydantic(exc, "config") from None
    leftover = masked_secret_paths(settings)
    if leftover:
        raise validation_error(
            [
                {
                    "field": dotted(path),
                    "message": f'"{MASK}" keeps a stored secret; none is stored',
                }
                for path in leftover
            ]
        )
    return settings


def validate_categories(requested: Sequence[str], allowed: Sequence[str]) -> list[str]:
    canonical = {c.lower(): c for c in allowed}
    result: list[str] = []
    for index, name in enumerate(requested):
        match = canonical.get(name.lower())
        if match is None:
            raise invalid(
                f"consent_categories.{index}",
                f"unknown category {name!r}; this organisation has: {', '.join(allowed)}",
            )
        if match not in result:
            result.append(match)
    return result


def _audit_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """Flat fields for audit diffs; secrets are already "***" in the stored config."""
    view: dict[str, Any] = {
        "name": row["name"],
        "enabled": row["enabled"],
        "status": row["status"],
        "consent_categories": list(row["consent_categories"]),
    }
    for path, value in flatten(row["config"]).items():
        view[dotted(path)] = value
    return view


def _secret_changes(old: Mapping[str, str], new: Mapping[str, str]) -> dict[str, Any]:
    """A replaced secret shows as {"old": "***", "new": "***"}: changed, never revealed."""
    changes: dict[str, Any] = {}
    for pointer in sorted(set(old) | set(new)):
        if old.get(pointer) != new.get(pointer):
            field = dotted(tuple(pointer[1:].split("/")))
            changes[field] = {
                "old": MASK if pointer in old else None,
                "new": MASK if pointer in new else None,
            }
    return changes


def refuse_planned(destination: Destination) -> None:
    """A type whose delivery is not built yet is in the catalog ("delivery": "planned") but
    cannot be created: it would accept events and deliver none."""
    if not destination.delivers:
        ready = ", ".join(sorted(t for t, d in registry.DESTINATIONS.items() if d.delivers))
        raise ApiError(
            422,
            "type_not_available",
            f"type: {destination.type} cannot deliver events yet (its catalog entry says "
            f'"delivery": "planned"); types that deliver: {ready}',
            [{"field": "type", "message": f"{destination.type} cannot deliver events yet"}],
        )


async def create(rt: Runtime, actor: Actor, body: IntegrationCreate) -> dict[str, Any]:
    destination = destination_for(body.type)
    refuse_planned(destination)
    require_extra(destination)  # S3, warehouses: their client libraries are an extra
    vendor_config, rules = rules_control.split_rules(body.config)
    await rules_control.validate(rules)
    settings = validate_config(destination, vendor_config)
    await check_targets(rt, destination, settings)
    public, secrets = split_secrets(settings)
    if rules is not None:
        public[rules_control.RULES_KEY] = rules
    async with rt.db.transaction() as conn:
        if await source_store.get(conn, actor.org_id, body.source_id) is None:
            raise invalid("source_id", "no such source in this organisation")
        org = await orgs.get(conn, actor.org_id)
        assert org is not None
        categories = validate_categories(
            body.consent_categories
            if body.consent_categories is not None
            else list(destination.default_consent),
            org["consent_categories"],
        )
        now = utcnow()
        row = {
            "id": new_id("int"),
            "org_id": actor.org_id,
            "source_id": body.source_id,
            "type": destination.type,
            "name": body.name,
            "enabled": body.enabled,
            "status": status_for(body.enabled),
            "config": public,
            "secrets": rt.vault.encrypt_json(secrets),
            "consent_categories": categories,
            "last_error_message": None,
            "last_error_at": None,
            "failing_since": None,
            "last_delivery_at": None,
            "created_at": now,
            "updated_at": now,
            "deleted_at": None,
        }
        await store.insert(conn, row)
        changes = {
            "source_id": {"old": None, "new": body.source_id},
            "type": {"old": None, "new": destination.type},
            **diff({}, _audit_view(row)),
        }
        await audit.record(
            conn, actor, "integration.created", "integration", str(row["id"]), changes
        )
    if rt.queue is not None and destination.delivers:
        # It reads its source's log from now on, whichever process starts its worker and when.
        try:
            await rt.queue.subscribe(str(row["id"]), body.source_id, since=now.timestamp())
        except Exception as exc:  # its worker subscribes too, from the creation time
            log.warning(
                "subscribing a new integration failed", extra={"error_type": type(exc).__name__}
            )
    await rt.bus.publish(Change("integration", str(row["id"])))
    return present(row)


async def get(rt: Runtime, org_id: str, integration_id: str) -> dict[str, Any]:
    async with rt.db.read() as conn:
        row = await store.get(conn, org_id, integration_id)
        if row is None:
            raise not_found("integration")
        return await _present_with_counts(conn, row)


async def update(
    rt: Runtime, actor: Actor, integration_id: str, body: IntegrationUpdate, dry_run: bool = False
) -> dict[str, Any]:
    """Apply `body`; an update that changes nothing writes nothing (no audit entry, same
    updated_at). `dry_run`: validate and return {"changes": ...} (the audit diff, secrets
    shown only as changed) without writing (`eventrelay apply --dry-run`)."""
    given = body.model_fields_set
    for field in ("name", "enabled", "config", "consent_categories"):
        if field in given and getattr(body, field) is None:
            raise invalid(field, "must not be null")
    async with rt.db.transaction() as conn:
        row = await store.get(conn, actor.org_id, integration_id)
        if row is None:
            raise not_found("integration")
        for field in ("type", "source_id"):
            value = getattr(body, field)
            if field in given and value is not None and value != row[field]:
                raise invalid(field, "cannot be changed; create a new integration instead")
        if not given - {"type", "source_id"}:
            raise ApiError(
                422,
                "validation_error",
                "body: give at least one of name, enabled, config, consent_categories",
                [{"field": "body", "message": "no updatable field given"}],
            )
        destination = destination_for(row["type"])
        values: dict[str, Any] = {}
        old_secrets = rt.vault.decrypt_json(row["secrets"])
        new_secrets = old_secrets
        if body.name is not None:
            values["name"] = body.name
        if body.enabled is not None:
            # Setting `enabled` (either way) also leaves the error state: that is "resume".
            values["enabled"] = body.enabled
            values["status"] = status_for(body.enabled)
            if body.enabled:
                values["failing_since"] = None
        if body.config is not None:
            vendor_config, rules = rules_control.split_rules(body.config)
            await rules_control.validate(rules)
            incoming, kept = keep_stored(vendor_config, old_secrets)
            settings = validate_config(destination, incoming)
            stored_vendor, _ = rules_control.split_rules(row["config"])
            refuse_redirected_secrets(destination, stored_vendor, settings, kept)
            await check_targets(rt, destination, settings)
            values["config"], new_secrets = split_secrets(settings)
            if rules is not None:
                values["config"][rules_control.RULES_KEY] = rules
            values["secrets"] = rt.vault.encrypt_json(new_secrets)
        if body.consent_categories is not None:
            org = await orgs.get(conn, actor.org_id)
            assert org is not None
            values["consent_categories"] = validate_categories(
                body.consent_categories, org["consent_categories"]
            )
        after = {**row, **values}
        changes = {
            **diff(_audit_view(row), _audit_view(after)),
            **_secret_changes(old_secrets, new_secrets),
        }
        if dry_run:
            return {"changes": changes}
        if not changes and all(
            old_secrets == new_secrets if key == "secrets" else row[key] == value
            for key, value in values.items()
        ):
            return await _present_with_counts(conn, row)
        await store.update_fields(conn, integration_id, values)
        if changes:
            await audit.record(
                conn, actor, "integration.updated", "integration", integration_id, changes
            )
        fresh = await store.get(conn, actor.org_id, integration_id)
        assert fresh is not None
        presented = await _present_with_counts(conn, fresh)
    await rt.bus.publish(Change("integration", integration_id))
    return presented


async def set_status(
    rt: Runtime, actor: Actor, integration_id: str, body: StatusChange
) -> dict[str, Any]:
    return await update(
        rt, actor, integration_id, IntegrationUpdate(enabled=body.status == "active")
    )


async def delete(rt: Runtime, actor: Actor, integration_id: str) -> None:
    async with rt.db.transaction() as conn:
        row = await store.get(conn, actor.org_id, integration_id)
        if row is None:
            raise not_found("integration")
        await store.soft_delete(conn, integration_id)
        await audit.record(
            conn,
            actor,
            "integration.deleted",
            "integration",
            integration_id,
            diff(_audit_view(row), {}),
        )
    await rt.bus.publish(Change("integration", integration_id))
    if rt.queue is not None:
        # Workers purge too when they hear of it; this covers a deployment with none running.
        try:
            await rt.queue.purge(integration_id)
        except Exception as exc:  # the deletion stands; the workers' purge follows
            log.warning(
                "purging a deleted integration failed", extra={"error_type": type(exc).__name__}
            )


async def check_targets(rt: Runtime, destination: Destination, settings: VendorSettings) -> None:
    """Refuse user-supplied targets on private networks (SSRF), unless the operator allows them."""
    if rt.settings.allow_private_targets:
        return
    from eventrelay.delivery.ssrf import TargetRefused, check_url

    for url in destination.target_urls(settings):
        try:
            await check_url(url, must_resolve=False, resolver=rt.resolver)
        except TargetRefused as exc:
            raise invalid("config.url", str(exc)) from None
