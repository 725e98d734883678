"""`eventrelay tail SOURCE`: follow a source's events as they arrive, with the routing decision
per integration (queued, or filtered and why) and then each integration's delivery outcome as
its worker settles it, from GET /v1/admin/sources/{id}/live."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

import click

from eventrelay.commands.client import AdminClient, ApiFailure, remote_options
from eventrelay.commands.lookup import find_source
from eventrelay.commands.output import json_option, note

RECONNECT_SECONDS = 2.0
REMEMBERED = 10_000  # message ids of shown events, for their outcomes
# With --count, how long to wait after the last event for its outcomes (retries take longer).
OUTCOME_WAIT_SECONDS = 10.0
FINAL_OUTCOMES = frozenset({"delivered", "discarded", "filtered", "expired"})


COMMENT = ":"  # the kind `sse_messages(comments=True)` gives a comment line


def sse_messages(lines: Iterable[str], comments: bool = False) -> Iterator[tuple[str, str]]:
    """(event, data) pairs from Server-Sent Events lines (retry ignored; comments, such as the
    server's keepalives, as (COMMENT, text) when asked for: they let a reader look at the
    clock while nothing else arrives)."""
    kind, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield kind, "\n".join(data)
            kind, data = "message", []
        elif line.startswith(":"):
            if comments:
                yield COMMENT, line[1:].strip()
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                kind = value
            elif field == "data":
                data.append(value)


def describe(entry: dict[str, Any]) -> str:
    """One line: time, type, event name, user, then each integration's decision."""
    event = entry.get("event") or {}
    at = str(entry.get("received_at") or "")[11:23]
    kind = str(entry.get("type") or "?")
    label = event.get("event") or event.get("name") or ""
    who = event.get("userId") or event.get("anonymousId") or "-"
    decisions = []
    for d in entry.get("routing") or []:
        outcome = d["decision"] + (f" ({d['reason']})" if d.get("reason") else "")
        decisions.append(f"{d.get('name') or d['integration_id']}: {outcome}")
    routing = " · ".join(decisions) or "no integrations"
    title = f'"{label}"' if label else ""
    return f"{at}  {kind:<8} {title}  {who}  -> {routing}".replace("   ", "  ")


def describe_outcome(outcome: dict[str, Any]) -> str:
    """One indented line under its event: integration, outcome, why, attempt."""
    at = time.strftime("%H:%M:%S", time.gmtime(float(outcome.get("at") or 0)))
    why = [str(outcome[k]) for k in ("reason",) if outcome.get(k)]
    if outcome.get("status"):
        why.insert(0, f"HTTP {outcome['status']}")
    detail = f" ({', '.join(why)})" if why else ""
    name = outcome.get("name") or outcome.get("integration_id")
    message_id = str(outcome.get("message_id") or "")
    return (
        f"  {at}  {message_id[:12]}  {name}: {outcome.get('outcome')}{detail}"
        f", attempt {outcome.get('attempt', 1)}"
    )


def _wanted(
    entry: dict[str, Any], types: tuple[str, ...], names: tuple[str, ...], user: str | None
) -> bool:
    event = entry.get("event") or {}
    if types and entry.get("type") not in types:
        return False
    if names and event.get("event") not in names and event.get("name") not in names:
        return False
    return not (user and user not in (event.get("userId"), event.get("anonymousId")))


@click.command()
@click.argument("source")
@click.option("--type", "types", multiple=True, help="Only these types (repeat).")
@click.option("--event", "names", multiple=True, help="Only these event (or page) names.")
@click.option("--user", default=None, help="Only this userId or anonymousId.")
@click.option(
    "--count",
    "-n",
    type=click.IntRange(1),
    default=None,
    help="Stop after N events (and their outcomes, waiting at most 10 s for them).",
)
@click.option("--payload", is_flag=True, help="Also print each event's JSON.")
@click.option(
    "--outcomes/--no-outcomes",
    default=True,
    help="Print each shown event's delivery outcomes as its integrations' workers settle it.",
)
@json_option
@remote_options
def tail(
    client: AdminClient,
    source: str,
    types: tuple[str, ...],
    names: tuple[str, ...],
    user: str | None,
    count: int | None,
    payload: bool,
    outcomes: bool,
    as_json: bool,
) -> None:
    """Follow a source's events as they arrive, with where each was queued or why it was
    filtered. Needs the editor role (events hold personal data). The view samples when events
    come faster than it can show (skipped events are counted)."""
    found = find_source(client, source)
    shown = 0
    seen: OrderedDict[str, None] = OrderedDict()  # shown events, whose outcomes are printed
    # With --count: (message id, integration) still without a final outcome, and since when
    # the count is reached.
    pending: set[tuple[str, str]] = set()
    counted_at: float | None = None
    connected_once = False
    while True:
        try:
            with client.stream(f"/v1/admin/sources/{found['id']}/live") as response:
                for kind, data in sse_messages(response.iter_lines(), comments=True):
                    if kind == "ready":
                        connected_once = True
                        listed = json.loads(data).get("integrations") or []
                        names_list = ", ".join(f"{i['name']} ({i['type']})" for i in listed)
                        note(
                            f"following {found['name']} ({found['id']}): "
                            f"{len(listed)} integration(s){': ' + names_list if listed else ''}."
                            " Ctrl-C stops."
                        )
                    elif kind == "skipped":
                        note(f"... {json.loads(data)['count']} event(s) not shown (sampled)")
                    elif kind == "outcomes" and outcomes:
                        for outcome in json.loads(data).get("outcomes") or []:
                            if outcome.get("message_id") not in seen:
                                continue  # its event was filtered out here or not shown
                            if as_json:
                                click.echo(json.dumps({"outcome": outcome}, ensure_ascii=False))
                            else:
                                click.echo(describe_outcome(outcome))
                            if outcome.get("outcome") in FINAL_OUTCOMES:
                                key = (outcome["message_id"], outcome.get("integration_id"))
                                pending.discard(key)
                    elif kind == "event" and counted_at is None:
                        entry = json.loads(data)
                        if not _wanted(entry, types, names, user):
                            continue
                        message_id = (entry.get("event") or {}).get("messageId")
                        if message_id:
                            seen[str(message_id)] = None
                            if len(seen) > REMEMBERED:
                                seen.popitem(last=False)
                            if outcomes and count is not None:
                                pending.update(
                                    (str(message_id), str(d["integration_id"]))
                                    for d in entry.get("routing") or []
                                    if d.get("decision") == "queued"
                                )
                        if as_json:
                            click.echo(json.dumps(entry, ensure_ascii=False))
                        else:
                            click.echo(describe(entry))
                            if payload:
                                click.echo(json.dumps(entry.get("event"), indent=2))
                        shown += 1
                        if count is not None and shown >= count:
                            counted_at = time.monotonic()
                    if counted_at is not None and (
                        not pending or time.monotonic() - counted_at > OUTCOME_WAIT_SECONDS
                    ):
                        return  # N events shown, and their outcomes (or the wait is over)
        except KeyboardInterrupt:
            return
        except ApiFailure:
            raise
        except click.ClickException:
            if not connected_once:
                raise
        # The stream ended (server restarting, proxy timeout): follow again.
        note(f"connection lost; reconnecting in {RECONNECT_SECONDS:g} s")
        try:
            time.sleep(RECONNECT_SECONDS)
        except KeyboardInterrupt:
            return
