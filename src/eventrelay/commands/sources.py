"""`eventrelay sources ...`: list, get, create, update, delete. A SOURCE argument is an id or a
name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from eventrelay.commands.client import AdminClient, remote_options
from eventrelay.commands.integrations import integrations_table
from eventrelay.commands.lookup import find_source, read_body
from eventrelay.commands.output import fields, file_option, json_option, note, print_json, table


@click.group()
def sources() -> None:
    """Sources: where events come from (a website, an app, a backend), each with write keys."""


def _source_row(s: dict[str, Any]) -> list[Any]:
    return [s["id"], s["name"], s["consent_default"], s["write_key"], s["created_at"]]


def _show_source(client: AdminClient, source: dict[str, Any]) -> None:
    fields(
        [
            ("id", source["id"]),
            ("name", source["name"]),
            ("write key", source["write_key"]),
            ("consent default", source["consent_default"]),
            ("allowed origins", ", ".join(source["allowed_origins"])),
            ("created", source["created_at"]),
            ("updated", source["updated_at"]),
        ]
    )
    listed = client.all_pages("/v1/admin/integrations", source_id=source["id"])
    click.echo("")
    integrations_table(listed)


@sources.command("list")
@json_option
@remote_options
def sources_list(client: AdminClient, as_json: bool) -> None:
    """List sources."""
    items = client.all_pages("/v1/admin/sources")
    if as_json:
        print_json(items)
        return
    table(
        ["id", "name", "consent default", "write key", "created"], [_source_row(s) for s in items]
    )


@sources.command("get")
@click.argument("source")
@json_option
@remote_options
def sources_get(client: AdminClient, source: str, as_json: bool) -> None:
    """Show a source and its integrations."""
    found = find_source(client, source)
    if as_json:
        print_json(found)
        return
    _show_source(client, found)


def _source_body(
    file: Path | None, name: str | None, consent_default: str | None, origins: tuple[str, ...]
) -> dict[str, Any]:
    body = read_body(file) if file else {}
    if name is not None:
        body["name"] = name
    if consent_default is not None:
        body["consent_default"] = consent_default
    if origins:
        body["allowed_origins"] = list(origins)
    return body


_source_options = [
    click.option("--name", default=None, help="The source's name."),
    click.option(
        "--consent-default",
        type=click.Choice(["deny", "allow"]),
        default=None,
        help="For events without consent information.",
    ),
    click.option(
        "--allowed-origin",
        "origins",
        multiple=True,
        help="Browser origin allowed to send (repeat; default any).",
    ),
    file_option("JSON/YAML body, as the API takes it; options override its fields."),
]


def source_options(fn: Any) -> Any:
    for option in reversed(_source_options):
        fn = option(fn)
    return fn


@sources.command("create")
@source_options
@json_option
@remote_options
def sources_create(
    client: AdminClient,
    file: Path | None,
    name: str | None,
    consent_default: str | None,
    origins: tuple[str, ...],
    as_json: bool,
) -> None:
    """Create a source (--name, or --file with the API's body); prints its write key."""
    body = _source_body(file, name, consent_default, origins)
    if "name" not in body:
        raise click.UsageError("give --name or a --file with a name")
    created = client.post("/v1/admin/sources", body)
    if as_json:
        print_json(created)
        return
    note(f"created source {created['id']} ({created['name']}); write key:")
    click.echo(created["write_key"])


@sources.command("update")
@click.argument("source")
@source_options
@json_option
@remote_options
def sources_update(
    client: AdminClient,
    source: str,
    file: Path | None,
    name: str | None,
    consent_default: str | None,
    origins: tuple[str, ...],
    as_json: bool,
) -> None:
    """Change a source's fields (the ones given)."""
    body = _source_body(file, name, consent_default, origins)
    if not body:
        raise click.UsageError("nothing to change: give --name, --consent-default, ... or --file")
    updated = client.put(f"/v1/admin/sources/{find_source(client, source)['id']}", body)
    if as_json:
        print_json(updated)
        return
    _show_source(client, updated)


@sources.command("delete")
@click.argument("source")
@click.option("--yes", is_flag=True, help="Do not ask.")
@remote_options
def sources_delete(client: AdminClient, source: str, yes: bool) -> None:
    """Delete a source (refused while it has integrations)."""
    found = find_source(client, source)
    if not yes:
        click.confirm(f"Delete source {found['id']} ({found['name']})?", abort=True, err=True)
    client.delete(f"/v1/admin/sources/{found['id']}")
    note(f"deleted source {found['id']}")
