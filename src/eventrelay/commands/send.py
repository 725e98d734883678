"""`eventrelay send`: one test event (or a file of them) through the ingest API, exactly as an SDK
sends it (the source's write key as the Basic username)."""

from __future__ import annotations

import json
import shlex
import uuid
from pathlib import Path
from typing import Any

import click

from eventrelay.commands.client import AdminClient, remote_options
from eventrelay.commands.lookup import find_source
from eventrelay.commands.output import file_option, json_option, load_document, note, print_json

KINDS = ("track", "identify", "page", "screen", "group", "alias")


def _object(value: str | None, option: str) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        data = json.loads(value)
    except json.JSONDecodeError:
        raise click.BadParameter("must be a JSON object", param_hint=option) from None
    if not isinstance(data, dict):
        raise click.BadParameter("must be a JSON object", param_hint=option)
    return data


def build_event(
    kind: str,
    event: str,
    name: str | None,
    user_id: str | None,
    anonymous_id: str | None,
    properties: dict[str, Any] | None,
    traits: dict[str, Any] | None,
    consent: tuple[str, ...],
) -> dict[str, Any]:
    body: dict[str, Any] = {"messageId": str(uuid.uuid4())}
    if user_id:
        body["userId"] = user_id
    if anonymous_id or not user_id:
        body["anonymousId"] = anonymous_id or f"eventrelay-cli-{uuid.uuid4().hex[:8]}"
    if kind == "track":
        body["event"] = event
    if kind in ("page", "screen") and name:
        body["name"] = name
    if kind == "group":
        body["groupId"] = name or "eventrelay-cli-group"
    if kind == "alias":
        body["previousId"] = name or body.get("anonymousId", "eventrelay-cli-previous")
    if properties is not None:
        body["properties"] = properties
    if traits is not None:
        body["traits"] = traits
    if consent:
        # Segment's consent spec: the categories the user granted.
        preferences = dict.fromkeys(consent, True)
        body["context"] = {"consent": {"categoryPreferences": preferences}}
    return body


def _error_text(status: int, answer: Any) -> str:
    # Ingest errors come as {"error": {"code", "message"}} or, as Segment's SDKs read them,
    # {"code", "message"} at the top level: read either.
    error = answer.get("error") if isinstance(answer, dict) else None
    error = error if isinstance(error, dict) else answer if isinstance(answer, dict) else {}
    return f"refused: {error.get('message', 'no message')} (HTTP {status}, {error.get('code')})"


@click.command()
@click.option("--source", default=None, help="Source id or name (its write key is looked up).")
@click.option(
    "--write-key",
    envvar="EVENTRELAY_WRITE_KEY",
    default=None,
    help="Or the write key itself (no admin token needed) [env EVENTRELAY_WRITE_KEY].",
)
@click.option("--type", "kind", type=click.Choice(KINDS), default="track", show_default=True)
@click.option("--event", default="Test Event", show_default=True, help="track: the event name.")
@click.option("--name", default=None, help="page/screen: the name; group: the group id.")
@click.option("--user-id", default=None)
@click.option("--anonymous-id", default=None, help="Default: a generated one without --user-id.")
@click.option("--properties", default=None, help="JSON object, e.g. '{\"revenue\": 9.99}'.")
@click.option("--traits", default=None, help="JSON object.")
@click.option(
    "--consent",
    multiple=True,
    help="Grant a consent category (repeat): context.consent.categoryPreferences.",
)
@file_option('Send this JSON/YAML event as is (or {"batch": [...]} to /v1/batch).')
@json_option
@remote_options
def send(
    client: AdminClient,
    source: str | None,
    write_key: str | None,
    kind: str,
    event: str,
    name: str | None,
    user_id: str | None,
    anonymous_id: str | None,
    properties: str | None,
    traits: str | None,
    consent: tuple[str, ...],
    file: Path | None,
    as_json: bool,
) -> None:
    """Send a test event through the ingest API (as an SDK would), then say what happened."""
    if not write_key:
        if not source:
            raise click.UsageError("give --source (id or name) or --write-key")
        write_key = find_source(client, source)["write_key"]
        if not write_key:
            raise click.ClickException(f"source {source} has no active write key")
    if file is not None:
        body = load_document(file)
        if not isinstance(body, dict):
            raise click.ClickException(f"{file} must hold one event (a mapping)")
        kind = "batch" if "batch" in body else str(body.get("type") or kind)
        if kind not in (*KINDS, "batch"):
            raise click.ClickException(f"{file}: unknown event type {kind!r}")
    else:
        body = build_event(
            kind,
            event,
            name,
            user_id,
            anonymous_id,
            _object(properties, "--properties"),
            _object(traits, "--traits"),
            consent,
        )
    status, answer = client.ingest(kind, write_key, body)
    if as_json:
        print_json({"status": status, "sent": body, "response": answer})
    if status != 200:
        raise click.ClickException(_error_text(status, answer))
    if not as_json:
        what = f'{kind} "{body["event"]}"' if kind == "track" else kind
        message_id = body.get("messageId")
        click.echo(f"accepted: {what}" + (f" (messageId {message_id})" if message_id else ""))
        if isinstance(answer, dict) and answer.get("rejected"):
            for item in answer["rejected"]:
                note(f"  rejected {item.get('field')}: {item.get('message')}")
        if source:
            note(f"see where it goes: eventrelay tail {shlex.quote(source)}")
