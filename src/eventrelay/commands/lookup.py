"""Finding a source or an integration by id or by name (a name must be unique), and reading
request bodies from files, for the resource commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from eventrelay.commands.client import AdminClient
from eventrelay.commands.output import load_document, substitute_env


def _by_name(items: list[dict[str, Any]], wanted: str, what: str) -> dict[str, Any]:
    matches = [i for i in items if i["name"] == wanted]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise click.ClickException(f"no {what} with id or name {wanted!r}")
    ids = ", ".join(m["id"] for m in matches)
    raise click.ClickException(f"{len(matches)} {what}s are named {wanted!r} ({ids}): use the id")


def find_source(client: AdminClient, ref: str) -> dict[str, Any]:
    if ref.startswith("src_"):
        source: dict[str, Any] = client.get(f"/v1/admin/sources/{ref}")
        return source
    return _by_name(client.all_pages("/v1/admin/sources"), ref, "source")


def find_integration(client: AdminClient, ref: str, source: str | None = None) -> dict[str, Any]:
    if ref.startswith("int_"):
        found: dict[str, Any] = client.get(f"/v1/admin/integrations/{ref}")
        return found
    source_id = find_source(client, source)["id"] if source else None
    listed = client.all_pages("/v1/admin/integrations", source_id=source_id)
    summary = _by_name(listed, ref, "integration")
    full: dict[str, Any] = client.get(f"/v1/admin/integrations/{summary['id']}")
    return full


def read_body(file: Path) -> dict[str, Any]:
    """A JSON/YAML object from a file, with ${ENV} references filled in."""
    data = load_document(file)
    if not isinstance(data, dict):
        raise click.ClickException(f"{file} must hold one object (a mapping)")
    body: dict[str, Any] = substitute_env(data, os.environ)
    return body
