"""Command line: serve, worker, migrate, tokens, orgs, secrets (on the installation), and the
admin API commands of `commands/` (sources, integrations, send, tail, apply, sink)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from eventrelay import __version__, logs
from eventrelay.commands import datadir
from eventrelay.core.roles import ROLES
from eventrelay.settings import Settings

if TYPE_CHECKING:
    from eventrelay.runtime import Runtime

T = TypeVar("T")


def _settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _upgrade(settings: Settings) -> None:
    # Imported when needed: the admin API commands start without the database layer.
    from eventrelay.store import migrate

    migrate.upgrade(settings.resolved_database_url)


def _with_runtime(fn: Callable[[Runtime], Awaitable[T]]) -> T:
    """Run one async operation against the configured installation (migrated first); never
    creates a new one (a data directory, database or key file)."""
    settings = _settings()
    datadir.announce(settings)
    datadir.require_installation(settings)
    _upgrade(settings)

    from eventrelay.runtime import Runtime

    async def main() -> T:
        rt = Runtime.create(settings, create_key=False)
        try:
            return await fn(rt)
        finally:
            await rt.close()

    return asyncio.run(main())


class _Commands(click.Group):
    """Commands of `commands/` are imported only when run (or listed), so each command starts
    without the libraries of the others."""

    LAZY = {
        "sources": "eventrelay.commands.sources:sources",
        "integrations": "eventrelay.commands.integrations:integrations",
        "send": "eventrelay.commands.send:send",
        "tail": "eventrelay.commands.tail:tail",
        "apply": "eventrelay.commands.apply:apply",
        "sink": "eventrelay.commands.sink:sink",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.LAZY])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.LAZY:
            import importlib

            module, _, name = self.LAZY[cmd_name].partition(":")
            command: click.Command = getattr(importlib.import_module(module), name)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Commands)
@click.version_option(__version__, prog_name="eventrelay")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The installation's data directory (default: EVENTRELAY_DATA_DIR, else ./.eventrelay).",
)
def main(data_dir: Path | None) -> None:
    """eventrelay: self-hosted server-side event delivery."""
    if data_dir is not None:
        # Through the environment, so every Settings() (and `serve --processes` children) agree.
        os.environ["EVENTRELAY_DATA_DIR"] = str(data_dir.resolve())


@main.command()
@click.option("--host", default=None, help="Bind address (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default 8084).")
@click.option("--access-log/--no-access-log", default=False, help="Log every request.")
@click.option(
    "--workers/--no-workers",
    default=True,
    help="Also run the delivery workers in this process (default) or serve the API only.",
)
@click.option(
    "--processes",
    default=None,
    type=click.IntRange(1, 64),
    help="HTTP processes sharing the port (default 1, or EVENTRELAY_PROCESSES).",
)
def serve(
    host: str | None, port: int | None, access_log: bool, workers: bool, processes: int | None
) -> None:
    """Run the HTTP API (admin + ingest) and, by default, delivery in one process."""
    import uvicorn

    from eventrelay.app import SERVE_ACCESS_LOG_ENV, SERVE_WORKERS_ENV, create_app
    from eventrelay.runtime import Runtime
    from eventrelay.server import uvicorn_options

    settings = _settings(host=host, port=port, processes=processes)
    datadir.announce(settings)
    if workers and settings.processes == 1:
        datadir.refuse_if_held(settings)
    logs.setup(settings.log_level, access_log=access_log)
    _upgrade(settings)
    rt = Runtime.create(settings)  # also creates the key file once, before any child starts
    rt.role = {"command": "serve", "address": f"http://{settings.host}:{settings.port}"}
    options = uvicorn_options(settings, access_log)  # server/: limits, timeouts, protocol
    if settings.processes == 1:
        uvicorn.run(create_app(rt, bootstrap_owner=True, workers=workers), **options)
        return
    # Children re-create everything from the environment; the CLI's choices go there first.
    os.environ[SERVE_WORKERS_ENV] = "1" if workers else "0"
    os.environ[SERVE_ACCESS_LOG_ENV] = "1" if access_log else "0"
    os.environ["EVENTRELAY_DATA_DIR"] = str(settings.data_dir.resolve())
    os.environ["EVENTRELAY_HOST"], os.environ["EVENTRELAY_PORT"] = settings.host, str(settings.port)
    uvicorn.run(
        "eventrelay.app:app_from_environment",
        factory=True,
        workers=settings.processes,
        **options,
    )


@main.command()
@click.option("--host", default="127.0.0.1", help="Bind address of the health/metrics port.")
@click.option(
    "--port", default=None, type=int, help="Serve /healthz, /readyz and /metrics on this port."
)
def worker(host: str, port: int | None) -> None:
    """Run delivery workers only (scale-out: any number, next to `serve --no-workers`)."""
    from eventrelay.delivery.process import run_worker
    from eventrelay.runtime import Runtime

    settings = _settings()
    datadir.announce(settings)
    datadir.refuse_if_held(settings)
    logs.setup(settings.log_level)
    _upgrade(settings)
    rt = Runtime.create(settings)
    rt.role = {"command": "worker", "address": f"http://{host}:{port}" if port else None}
    run_worker(rt, host, port)


@main.command("migrate")
def migrate_cmd() -> None:
    """Apply database migrations (creates a new installation when there is none)."""
    from eventrelay.store.vault import load_keys

    settings = _settings()
    datadir.announce(settings)
    _upgrade(settings)
    if settings.secret_key is None:  # the installation's key file, as `serve` would create it
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        load_keys(None, settings.key_file, create=True)
    click.echo("migrations applied")


@main.group()
def tokens() -> None:
    """Admin API tokens (works without a running server)."""


async def _org_id(rt: Runtime, org: str | None) -> str:
    from eventrelay.store import orgs

    async with rt.db.transaction() as conn:
        if org:
            row = await orgs.get(conn, org)
            if row is None:
                raise click.ClickException(f"no organisation {org}")
            return str(row["id"])
        row = await orgs.first(conn) or await orgs.create(conn, "Default organisation")
        return str(row["id"])


@tokens.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", required=True)
@click.option("--org", default=None, help="Organisation id (default: the first one).")
def tokens_create(role: str, name: str, org: str | None) -> None:
    """Create a token; the token alone is the last line of stdout."""
    from eventrelay.control.tokens import TokenCreate, create
    from eventrelay.store.audit import Actor

    async def run(rt: Runtime) -> dict[str, Any]:
        org_id = await _org_id(rt, org)
        return await create(rt, Actor(org_id, None, "cli"), TokenCreate(name=name, role=role))

    created = _with_runtime(run)
    click.echo(f"created {created['id']} ({created['role']}) in the organisation; token:")
    click.echo(created["token"])


@tokens.command("list")
def tokens_list() -> None:
    """List tokens of every organisation (never their secrets)."""
    from eventrelay.control.tokens import present
    from eventrelay.store import tokens as store

    async def run(rt: Runtime) -> list[tuple[str, dict[str, Any]]]:
        async with rt.db.read() as conn:
            return [(str(r["org_id"]), present(r)) for r in await store.list_all(conn)]

    for org_id, token in _with_runtime(run):
        state = f"revoked {token['revoked_at']}" if token["revoked_at"] else "active"
        click.echo(f"{token['id']}  {token['role']:<6}  {state:<28}  {org_id}  {token['name']}")


@tokens.command("revoke")
@click.argument("token_id")
def tokens_revoke(token_id: str) -> None:
    """Revoke a token by id (tok_...)."""
    from eventrelay.control.tokens import revoke
    from eventrelay.errors import ApiError
    from eventrelay.store import tokens as store
    from eventrelay.store.audit import Actor

    async def run(rt: Runtime) -> None:
        async with rt.db.read() as conn:
            row = await store.get_any(conn, token_id)
        if row is None:
            raise click.ClickException(f"no token {token_id}")
        try:
            await revoke(rt, Actor(str(row["org_id"]), None, "cli"), token_id)
        except ApiError as exc:
            raise click.ClickException(exc.message) from None

    _with_runtime(run)
    click.echo(f"revoked {token_id}")


@main.group()
def users() -> None:
    """Console users (works without a running server)."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", default=None, help="Display name (default: the email).")
@click.option("--org", default=None, help="Organisation id (default: the first one).")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    envvar="EVENTRELAY_NEW_PASSWORD",
    help="Asked for when not given (or EVENTRELAY_NEW_PASSWORD): keep it out of shell history.",
)
def users_create(email: str, role: str, name: str | None, org: str | None, password: str) -> None:
    """Create an active user who logs in to the console with this email and password."""
    from eventrelay.control.users import create_with_password
    from eventrelay.errors import ApiError
    from eventrelay.store.audit import Actor

    async def run(rt: Runtime) -> dict[str, Any]:
        org_id = await _org_id(rt, org)
        actor = Actor(org_id, None, "cli")
        return await create_with_password(rt, actor, email, name or email, role, password)

    try:
        created = _with_runtime(run)
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    except ValueError as exc:  # the email's validation
        raise click.ClickException(str(exc).splitlines()[-1]) from None
    click.echo(f"created {created['id']} {created['email']} ({created['role']})")


@main.group()
def orgs() -> None:
    """Organisations (tenants): each has its own sources, integrations, tokens and audit log.

    The first start creates "Default organisation"; `tokens create --org ORG_ID` gives a token
    of another one, and everything done with that token stays inside it.
    """


@orgs.command("create")
@click.option("--name", required=True)
def orgs_create(name: str) -> None:
    """Create an organisation; its id is the last line of stdout."""
    from eventrelay.store import orgs as store

    async def run(rt: Runtime) -> str:
        async with rt.db.transaction() as conn:
            return str((await store.create(conn, name))["id"])

    click.echo(_with_runtime(run))


@orgs.command("list")
def orgs_list() -> None:
    """List organisations: id and name."""
    from eventrelay.store import orgs as store

    async def run(rt: Runtime) -> list[Any]:
        async with rt.db.read() as conn:
            return list(await store.list_all(conn))

    for row in _with_runtime(run):
        click.echo(f"{row['id']}  {row['name']}")


@main.group()
def secrets() -> None:
    """Encryption keys of stored credentials."""


@secrets.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every stored secret with the newest key.

    With the key file (embedded default) a new key is generated and put first; the old keys stay
    in the file so nothing becomes unreadable. With EVENTRELAY_SECRET_KEY, put the new key first
    in the list, then run this.
    """
    from cryptography.fernet import Fernet

    from eventrelay.control.secrets import RotationRefused, rotate
    from eventrelay.store.vault import read_key_file, write_key_file

    settings = _settings()
    datadir.announce(settings)
    datadir.require_installation(settings)
    if not settings.secret_key:
        keys = read_key_file(settings.key_file) if settings.key_file.exists() else []
        write_key_file(settings.key_file, [Fernet.generate_key(), *keys])
        click.echo(f"added a new key to {settings.key_file} ({len(keys) + 1} keys)")
    try:
        count = _with_runtime(rotate)
    except RotationRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"re-encrypted {count} integration(s) with the newest key")
