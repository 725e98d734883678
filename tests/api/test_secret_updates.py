"""Updating a config keeps, replaces or removes stored secrets, and never lets them follow a
changed target (issue 10.6: secrets left out were deleted; issue 9.6: a new URL received them)."""

from __future__ import annotations

import re
from copy import deepcopy
from typing import Any

import pytest
from pydantic import ValidationError

from eventrelay.core.config_secrets import MASK, Pointer, from_pointer, split_secrets
from eventrelay.destinations import registry
from eventrelay.destinations.base import endpoint_values
from tests.support.api import Api
from tests.support.examples import valid_configs

SIGNING = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def full_config(type_: str) -> dict[str, Any]:
    """The example config with every optional secret set too (webhook: a signing secret)."""
    config = valid_configs()[type_]
    if type_ == "webhook":
        config["signing_secret"] = SIGNING
    return config


def secret_pointers(type_: str, config: dict[str, Any]) -> dict[str, str]:
    settings = registry.DESTINATIONS[type_].Settings.model_validate(config)
    return split_secrets(settings)[1]


TYPES_WITH_SECRETS = sorted(
    t for t in registry.DESTINATIONS if t in valid_configs() and secret_pointers(t, full_config(t))
)


def _parent(doc: Any, path: Pointer) -> Any:
    for part in path[:-1]:
        doc = doc[part]
    return doc


def without(config: dict[str, Any], pointers: list[str]) -> dict[str, Any]:
    doc = deepcopy(config)
    for pointer in pointers:
        path = from_pointer(pointer)
        del _parent(doc, path)[path[-1]]
    return doc


def with_value(config: dict[str, Any], pointer: str, value: Any) -> dict[str, Any]:
    doc = deepcopy(config)
    path = from_pointer(pointer)
    _parent(doc, path)[path[-1]] = value
    return doc


async def create(api: Api, type_: str, config: dict[str, Any]) -> str:
    source = await api.make_source()
    if registry.DESTINATIONS[type_].delivers:
        body = await api.make_integration(source["id"], type=type_, config=config)
        return str(body["id"])
    # Types that cannot deliver are not created by the API any more; rows left by older
    # versions are still updated through it.
    return await api.stored_integration(source["id"], type_, config)


async def stored_secrets(api: Api, integration_id: str) -> dict[str, str]:
    from sqlalchemy import select

    from eventrelay.store.tables import integrations

    async with api.runtime.db.read() as conn:
        token = (
            await conn.execute(
                select(integrations.c.secrets).where(integrations.c.id == integration_id)
            )
        ).scalar_one()
    return api.runtime.vault.decrypt_json(token)


@pytest.mark.parametrize("type_", TYPES_WITH_SECRETS)
async def test_left_out_or_masked_secrets_are_kept_null_removes(api: Api, type_: str) -> None:
    config = full_config(type_)
    secrets = secret_pointers(type_, config)
    integration = await create(api, type_, config)
    path = f"/v1/admin/integrations/{integration}"

    # Left out entirely: kept (a PUT of the non-secret fields must not delete credentials).
    r = await api.put(path, json={"config": without(config, list(secrets))})
    assert r.status_code == 200, r.text
    assert await stored_secrets(api, integration) == secrets
    # Sent back as "***", as read: kept.
    r = await api.put(path, json={"config": r.json()["config"]})
    assert r.status_code == 200, r.text
    assert await stored_secrets(api, integration) == secrets

    # An explicit null removes one; a required one cannot be removed (422 naming it).
    model = registry.DESTINATIONS[type_].Settings
    for pointer in secrets:
        try:
            model.model_validate(without(config, [pointer]))
            optional = True
        except ValidationError:
            optional = False
        r = await api.put(path, json={"config": with_value(config, pointer, None)})
        field = "config." + ".".join(from_pointer(pointer))
        if optional:
            assert r.status_code == 200, r.text
            assert pointer not in await stored_secrets(api, integration)
            # Put it back for the next round.
            r = await api.put(path, json={"config": config})
            assert r.status_code == 200, r.text
        else:
            assert r.status_code == 422, r.text
            assert field in [d["field"] for d in r.json()["error"]["details"]]
            assert await stored_secrets(api, integration) == secrets


async def test_new_value_replaces_and_audit_shows_only_masks(api: Api) -> None:
    config = full_config("webhook")
    integration = await create(api, "webhook", config)
    changed = with_value(config, "/headers/X-API-Key", "rotated-key")
    r = await api.put(f"/v1/admin/integrations/{integration}", json={"config": changed})
    assert r.status_code == 200
    assert (await stored_secrets(api, integration))["/headers/X-API-Key"] == "rotated-key"
    assert "rotated-key" not in r.text


# --- 9.6: stored secrets never follow a changed target ---------------------------------------

# A different valid value for every endpoint field in the registry.
OTHER_TARGET: dict[tuple[str, str], Any] = {
    ("webhook", "url"): "https://attacker.example.net/collect",
    ("redshift", "host"): "attacker.example.net",
    ("redshift", "port"): 5440,
    ("redshift", "s3_staging_bucket"): "attacker-bucket",
    ("redshift", "s3_region"): "eu-west-1",
    ("bigquery", "project_id"): "attacker-project",
    ("snowflake", "account"): "attacker.eu-west-1",
    ("s3", "bucket"): "attacker-bucket",
    ("s3", "region"): "eu-west-1",
    ("gcs", "bucket"): "attacker-bucket",
}

ENDPOINT_NAME = re.compile(r"(^|_)(url|uri|host|hostname|endpoint|domain|bucket|account|port)$")


def test_endpoint_fields_are_marked_in_every_settings_model() -> None:
    """Every field that names where requests go is marked, so the rule covers it; a new one
    needs an entry in OTHER_TARGET (and is then tested below)."""
    marked = {
        (type_, key)
        for type_, destination in registry.DESTINATIONS.items()
        for key in endpoint_values(destination.Settings, {})
    }
    assert marked == set(OTHER_TARGET)
    for type_, destination in registry.DESTINATIONS.items():
        for name, info in destination.Settings.model_fields.items():
            if ENDPOINT_NAME.search(info.alias or name) and not name.endswith("_id"):
                assert (type_, info.alias or name) in marked, f"{type_}.{name} is not marked"
        schema, _ = registry.config_schema(destination)
        for type_key in [k for t, k in marked if t == type_]:
            assert schema["properties"][type_key].get("x-endpoint") is True


@pytest.mark.parametrize(("type_", "field"), sorted(OTHER_TARGET))
async def test_changing_a_target_needs_the_secrets_again(api: Api, type_: str, field: str) -> None:
    config = full_config(type_)
    secrets = secret_pointers(type_, config)
    integration = await create(api, type_, config)
    editor = await api.make_token("editor")
    path = f"/v1/admin/integrations/{integration}"
    redirected = {**config, field: OTHER_TARGET[(type_, field)]}
    expected = sorted("config." + ".".join(from_pointer(p)) for p in secrets)

    for masked in (True, False):  # sent back as read, or left out
        body = without(redirected, list(secrets))
        for pointer in secrets if masked else ():
            body = with_value(body, pointer, MASK)
        r = await api.put(path, token=editor, json={"config": body})
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "secrets_required"
        assert sorted(d["field"] for d in error["details"]) == expected
        assert f"config.{field}" in error["message"]
        current = (await api.get(path)).json()["config"]
        assert current.get(field) == config.get(field)  # nothing changed
        assert await stored_secrets(api, integration) == secrets

    # Even the owner does not carry stored secrets to a new target.
    body = redirected
    for pointer in secrets:
        body = with_value(body, pointer, MASK)
    r = await api.put(path, json={"config": body})
    assert r.status_code == 422, r.text

    # Given again: accepted, and the new values are stored.
    r = await api.put(path, token=editor, json={"config": redirected})
    assert r.status_code == 200, r.text
    assert (await api.get(path)).json()["config"][field] == OTHER_TARGET[(type_, field)]


async def test_removing_the_secrets_also_allows_a_new_target(api: Api) -> None:
    integration = await create(api, "webhook", full_config("webhook"))
    r = await api.put(
        f"/v1/admin/integrations/{integration}",
        json={
            "config": {
                "url": "https://elsewhere.example.net/hook",
                "headers": {"X-API-Key": None},
                "signing_secret": None,
            }
        },
    )
    assert r.status_code == 200, r.text
    assert await stored_secrets(api, integration) == {}


@pytest.mark.parametrize(
    ("url", "same"),
    [
        ("https://API.example.com/events", True),  # host names are case-insensitive
        ("https://api.example.com:443/events", True),  # the default port
        ("https://api.example.com/other-receiver", False),  # one host, many receivers
        ("https://api.example.com/events?tenant=2", False),
        ("http://api.example.com/events", False),
        ("https://api.example.com:8443/events", False),
    ],
)
async def test_what_counts_as_a_new_target(api: Api, url: str, same: bool) -> None:
    integration = await create(api, "webhook", full_config("webhook"))
    r = await api.put(
        f"/v1/admin/integrations/{integration}",
        json={"config": {"url": url, "batch": True}},  # secrets left out: kept
    )
    assert r.status_code == (200 if same else 422), r.text


async def test_other_changes_keep_the_secrets(api: Api) -> None:
    config = full_config("webhook")
    integration = await create(api, "webhook", config)
    editor = await api.make_token("editor")
    r = await api.put(
        f"/v1/admin/integrations/{integration}",
        token=editor,
        json={"config": {"url": config["url"], "batch": True, "headers": {"X-API-Key": MASK}}},
    )
    assert r.status_code == 200, r.text
    assert await stored_secrets(api, integration) == secret_pointers("webhook", config)
