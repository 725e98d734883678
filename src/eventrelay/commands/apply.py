"""`eventrelay apply FILE`: sources and integrations as code.

The file (YAML or JSON) says what should exist; apply creates what is missing and updates what
differs, matching by name within the token's organisation (a source by its name, an integration
by its name within its source). Applying the same file again changes nothing. Fields left out
of the file are left as they are; a `config` given is the whole config. Nothing is deleted.

Secrets stay out of the file: `${NAME}` anywhere in a string is replaced with the environment
variable NAME when the command runs; the values go to the server only and are never printed or
written anywhere (the plan shows a changed secret as `***`).

`--dry-run` prints the plan only. Differences are computed by the server
(POST .../plan: the same validation and the same diff the audit log records), so defaults,
category spelling and secrets compare exactly as an update would.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import click
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eventrelay.commands.client import AdminClient, remote_options
from eventrelay.commands.output import json_option, load_document, note, print_json, substitute_env


class IntegrationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    type: str = Field(min_length=1)
    enabled: bool | None = None
    consent_categories: list[str] | None = None
    config: dict[str, Any] | None = None


class SourceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    consent_default: Literal["deny", "allow"] | None = None
    allowed_origins: list[str] | None = None
    integrations: list[IntegrationSpec] = Field(default_factory=list)


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sources: list[SourceSpec] = Field(default_factory=list)


@dataclass
class Step:
    action: Literal["create", "update", "unchanged"]
    kind: Literal["source", "integration"]
    source: str
    name: str
    type: str | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    run: Callable[[], dict[str, Any]] | None = None
    result_id: str | None = None

    @property
    def label(self) -> str:
        if self.kind == "source":
            return self.name
        return f"{self.source} / {self.name}" + (f" ({self.type})" if self.type else "")

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "kind": self.kind, "name": self.name}
        if self.kind == "integration":
            out["source"] = self.source
            out["type"] = self.type
        if self.changes:
            out["changes"] = self.changes
        if self.result_id:
            out["id"] = self.result_id
        return out


def load_spec(path: Path) -> Spec:
    raw = substitute_env(load_document(path), os.environ)
    try:
        spec = Spec.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = "".join(
                f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]
            ).lstrip(".")
            problems.append(f"  {where or 'top level'}: {error['msg']}")
        message = f"{path} does not describe sources:\n" + "\n".join(problems)
        raise click.ClickException(message) from None
    seen: set[str] = set()
    for source in spec.sources:
        if source.name in seen:
            raise click.ClickException(f"{path}: source {source.name!r} appears twice")
        seen.add(source.name)
        names = [i.name for i in source.integrations]
        for name in {n for n in names if names.count(n) > 1}:
            raise click.ClickException(
                f"{path}: integration {name!r} appears twice in source {source.name!r}"
            )
    return spec


def _unique(items: list[dict[str, Any]], name: str, what: str) -> dict[str, Any] | None:
    matches = [i for i in items if i["name"] == name]
    if len(matches) > 1:
        ids = ", ".join(m["id"] for m in matches)
        raise click.ClickException(
            f"{len(matches)} {what}s are named {name!r} ({ids}): apply matches by name, so "
            "rename or delete the extra ones first"
        )
    return matches[0] if matches else None


def plan(client: AdminClient, spec: Spec) -> list[Step]:
    sources = client.all_pages("/v1/admin/sources")
    integrations = client.all_pages("/v1/admin/integrations")
    steps: list[Step] = []
    created_ids: dict[str, str] = {}  # source name -> id, filled while applying
    for source in spec.sources:
        existing = _unique(sources, source.name, "source")
        body = source.model_dump(
            exclude={"integrations", "name"}, exclude_none=True, exclude_unset=True
        )
        if existing is None:
            create_body = {"name": source.name, **body}

            def create_source(b: dict[str, Any] = create_body, n: str = source.name) -> Any:
                created = client.post("/v1/admin/sources", b)
                created_ids[n] = created["id"]
                return created

            steps.append(Step("create", "source", source.name, source.name, run=create_source))
        else:
            created_ids[source.name] = existing["id"]
            steps.append(_source_update(client, source.name, existing["id"], body))
        mine = [i for i in integrations if existing and i["source_id"] == existing["id"]]
        for spec_i in source.integrations:
            steps.append(_integration_step(client, source.name, spec_i, mine, created_ids))
    return steps


def _source_update(client: AdminClient, name: str, source_id: str, body: dict[str, Any]) -> Step:
    path = f"/v1/admin/sources/{source_id}"
    changes = client.post(f"{path}/plan", body)["changes"] if body else {}

    def update() -> Any:
        return client.put(path, body)

    return Step(
        "update" if changes else "unchanged",
        "source",
        name,
        name,
        changes=changes,
        run=update if changes else None,
        result_id=source_id,
    )


def _integration_step(
    client: AdminClient,
    source_name: str,
    spec: IntegrationSpec,
    existing_in_source: list[dict[str, Any]],
    source_ids: dict[str, str],
) -> Step:
    where = f"integration {spec.name!r} of source {source_name!r}"
    body = spec.model_dump(exclude={"name", "type"}, exclude_none=True, exclude_unset=True)
    found = _unique(existing_in_source, spec.name, "integration")
    if found is None:
        if spec.config is None:
            raise click.ClickException(f"{where} does not exist yet: its config is needed")

        def create() -> Any:
            payload = {
                "source_id": source_ids[source_name],
                "name": spec.name,
                "type": spec.type,
                **body,
            }
            return client.post("/v1/admin/integrations", payload)

        return Step("create", "integration", source_name, spec.name, spec.type, run=create)
    if found["type"] != spec.type:
        raise click.ClickException(
            f"{where} is of type {found['type']}, the file says {spec.type}: a type cannot "
            "change (give the new one another name, and delete the old one)"
        )
    path = f"/v1/admin/integrations/{found['id']}"
    changes = client.post(f"{path}/plan", body)["changes"] if body else {}

    def update() -> Any:
        return client.put(path, body)

    return Step(
        "update" if changes else "unchanged",
        "integration",
        source_name,
        spec.name,
        spec.type,
        changes=changes,
        run=update if changes else None,
        result_id=found["id"],
    )


_SIGNS = {"create": "+", "update": "~", "unchanged": "="}


def _value(value: Any) -> str:
    return "-" if value is None else repr(value) if isinstance(value, str) else str(value)


def print_plan(steps: list[Step]) -> None:
    for step in steps:
        click.echo(f"{_SIGNS[step.action]} {step.action:<9} {step.kind:<11} {step.label}")
        for name, change in sorted(step.changes.items()):
            if change.get("old") == "***" or change.get("new") == "***":
                click.echo(f"      {name}: secret {'set' if change.get('new') else 'removed'}")
            else:
                click.echo(
                    f"      {name}: {_value(change.get('old'))} -> {_value(change.get('new'))}"
                )
    tally = {a: sum(1 for s in steps if s.action == a) for a in _SIGNS}
    click.echo(
        f"Plan: {tally['create']} to create, {tally['update']} to update, "
        f"{tally['unchanged']} unchanged."
    )


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", "--plan", "dry_run", is_flag=True, help="Show the plan; change nothing.")
@json_option
@remote_options
def apply(client: AdminClient, file: Path, dry_run: bool, as_json: bool) -> None:
    """Create or update sources and integrations from a YAML/JSON file (config as code).

    Sources match by name in the token's organisation, integrations by name within their
    source: what is missing is created, what differs is updated, nothing is deleted, and
    applying the same file again changes nothing. Fields left out are kept; a config given is
    the whole config. ${NAME} is read from the environment (keep secrets out of the file).

    \b
    sources:
      - name: Web shop
        consent_default: deny
        integrations:
          - name: Orders webhook
            type: webhook
            config:
              url: https://hooks.example.com/orders
              signing_secret: ${ORDERS_WEBHOOK_SECRET}
    """
    steps = plan(client, load_spec(file))
    todo = [s for s in steps if s.run is not None]
    if not as_json:
        print_plan(steps)
    if dry_run or not todo:
        if as_json:
            print_json({"plan": [s.as_json() for s in steps], "applied": False})
        return
    done = 0
    try:
        with click.progressbar(
            todo, label="applying", file=sys.stderr, show_pos=True, hidden=as_json
        ) as bar:
            for step in bar:
                assert step.run is not None
                result = step.run()
                step.result_id = result.get("id") if isinstance(result, dict) else None
                done += 1
    finally:
        if as_json:
            print_json({"plan": [s.as_json() for s in steps], "applied": done == len(todo)})
        elif done < len(todo):
            note(f"stopped after {done} of {len(todo)} changes; fix the cause and apply again")
    if not as_json:
        created = sum(1 for s in todo if s.action == "create")
        click.echo(f"Applied: {created} created, {len(todo) - created} updated.")
