"""`eventrelay integrations ...`: list, get, create and update from JSON/YAML files, enable,
disable, test, delete. An INTEGRATION argument is an id or a name (`--source` narrows it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from eventrelay.commands.client import AdminClient, remote_options
from eventrelay.commands.lookup import find_integration, find_source, read_body
from eventrelay.commands.output import (
    counts,
    fields,
    file_option,
    json_option,
    note,
    print_json,
    table,
)


@click.group()
def integrations() -> None:
    """Integrations: where a source's events go (a vendor or a webhook), with their config."""


def integrations_table(items: list[dict[str, Any]]) -> None:
    table(
        ["id", "name", "type", "source", "status", "filtered (1 h)", "last error"],
        [
            [
                i["id"],
                i["name"],
                i["type"],
                i["source_id"],
                i["status"],
                counts(i.get("filtered_last_hour")),
                i.get("last_error_message"),
            ]
            for i in items
        ],
    )


def _show_integration(client: AdminClient, integration: dict[str, Any]) -> None:
    report = client.get(f"/v1/admin/integrations/{integration['id']}/metrics", granularity="minute")
    totals = {m["metricName"]: m["total"] for m in report["metrics"]}
    shown = ("queued", "successes", "retried", "discarded", "expired", "filtered")
    last_hour = ", ".join(f"{k} {totals[k]}" for k in shown if totals.get(k)) or "nothing"
    fields(
        [
            ("id", integration["id"]),
            ("name", integration["name"]),
            ("type", integration["type"]),
            ("source", integration["source_id"]),
            ("status", integration["status"]),
            ("consent categories", ", ".join(integration["consent_categories"]) or "-"),
            ("last hour", last_hour),
            ("pending", report.get("pending")),
            ("filtered (1 h)", counts(integration.get("filtered_last_hour"))),
            ("last delivery", integration.get("last_delivery_at")),
            ("last error", integration.get("last_error_message")),
            ("last error at", integration.get("last_error_at")),
            ("config", integration["config"]),
            ("created", integration["created_at"]),
            ("updated", integration["updated_at"]),
        ]
    )


@integrations.command("list")
@click.option("--source", default=None, help="Only this source's (id or name).")
@click.option("--type", "type_", default=None, help="Only this type (ga4, webhook, ...).")
@json_option
@remote_options
def integrations_list(
    client: AdminClient, source: str | None, type_: str | None, as_json: bool
) -> None:
    """List integrations, with what they filtered over the last hour and their last error."""
    source_id = find_source(client, source)["id"] if source else None
    items = client.all_pages("/v1/admin/integrations", source_id=source_id, type=type_)
    if as_json:
        print_json(items)
        return
    integrations_table(items)


@integrations.command("get")
@click.argument("integration")
@click.option("--source", default=None, help="Where a name is ambiguous: the source.")
@json_option
@remote_options
def integrations_get(
    client: AdminClient, integration: str, source: str | None, as_json: bool
) -> None:
    """Show an integration: status, config (secrets as ***), last hour's delivery, errors."""
    found = find_integration(client, integration, source)
    if as_json:
        print_json(found)
        return
    _show_integration(client, found)


@integrations.command("create")
@file_option("JSON/YAML body as the API takes it (type, name, config, ...). ${VAR} reads env.")
@click.option("--source", default=None, help="The source (id or name), if not in the file.")
@json_option
@remote_options
def integrations_create(
    client: AdminClient, file: Path | None, source: str | None, as_json: bool
) -> None:
    """Create an integration from a JSON or YAML file."""
    if file is None:
        raise click.UsageError("give --file with the integration (type, name, config)")
    body = read_body(file)
    if source:
        body["source_id"] = find_source(client, source)["id"]
    if "source_id" not in body:
        raise click.UsageError("give --source or a source_id in the file")
    created = client.post("/v1/admin/integrations", body)
    if as_json:
        print_json(created)
        return
    note(f"created integration {created['id']} ({created['name']}, {created['type']})")
    _show_integration(client, created)


@integrations.command("update")
@click.argument("integration")
@file_option("JSON/YAML with the fields to change; a config replaces the config.")
@click.option("--source", default=None, help="Where a name is ambiguous: the source.")
@json_option
@remote_options
def integrations_update(
    client: AdminClient, integration: str, file: Path | None, source: str | None, as_json: bool
) -> None:
    """Change an integration from a JSON or YAML file (fields given change, others stay)."""
    if file is None:
        raise click.UsageError("give --file with the fields to change")
    found = find_integration(client, integration, source)
    updated = client.put(f"/v1/admin/integrations/{found['id']}", read_body(file))
    if as_json:
        print_json(updated)
        return
    _show_integration(client, updated)


def _set_status(client: AdminClient, integration: str, source: str | None, status: str) -> None:
    found = find_integration(client, integration, source)
    done = client.post(f"/v1/admin/integrations/{found['id']}/status", {"status": status})
    note(f"{done['id']} ({done['name']}) is {done['status']}")


@integrations.command("enable")
@click.argument("integration")
@click.option("--source", default=None, help="Where a name is ambiguous: the source.")
@remote_options
def integrations_enable(client: AdminClient, integration: str, source: str | None) -> None:
    """Enable (resume) an integration; also leaves the error state."""
    _set_status(client, integration, source, "active")


@integrations.command("disable")
@click.argument("integration")
@click.option("--source", default=None, help="Where a name is ambiguous: the source.")
@remote_options
def integrations_disable(client: AdminClient, integration: str, source: str | None) -> None:
    """Disable (pause) an integration: its events are kept until the max age."""
    _set_status(client, integration, source, "paused")


@integrations.command("delete")
@click.argument("integration")
@click.option("--source", default=None, help="Where a name is ambiguous: the source.")
@click.option("--yes", is_flag=True, help="Do not ask.")
@remote_options
def integrations_delete(
    client: AdminClient, integration: str, source: str | None, yes: bool
) -> None:
    """Delete an integration; its queued events are discarded."""
    found = find_integration(client, integration, source)
    if not yes:
        click.confirm(f"Delete integration {found['id']} ({found['name']})?", abort=True, err=True)
    client.delete(f"/v1/admin/integrations/{found['id']}")
    note(f"deleted integration {found['id']}")


@integrations.command("test")
@click.argument("integration")
@click.option("--source", default=None, help="Where a name is ambiguous: the source.")
@json_option
@remote_options
def integrations_test(
    client: AdminClient, integration: str, source: str | None, as_json: bool
) -> None:
    """Send one test event the cheapest way the vendor offers and show its answer."""
    found = find_integration(client, integration, source)
    result = client.post(f"/v1/admin/integrations/{found['id']}/test")
    if as_json:
        print_json(result)
    else:
        for item in result.get("results", []):
            outcome = item["outcome"]
            status = (item.get("response") or {}).get("status")
            click.echo(
                f"{outcome['kind']}  HTTP {status or '-'}  {outcome.get('message') or ''}".rstrip()
            )
        click.echo("ok" if result.get("ok") else "not ok")
    if not result.get("ok"):
        raise SystemExit(1)
