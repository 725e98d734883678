"""Which installation a command works on, resolved exactly as the server resolves it
(EVENTRELAY_DATA_DIR, else `.eventrelay` in the current directory), said on stderr, and never
created by accident: only `serve`, `worker` and `migrate` may start a new one."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import click

from eventrelay.queue.sqlite import describe_holder, lock_holder
from eventrelay.settings import Settings

HOW_TO_POINT = (
    "run the command from the directory the server runs in, or point at its data directory "
    "with --data-dir PATH or EVENTRELAY_DATA_DIR"
)


def data_dir(settings: Settings) -> Path:
    return settings.data_dir.resolve()


def _database_label(settings: Settings) -> str:
    if settings.is_sqlite:
        return str(sqlite_file(settings))
    parts = urlsplit(settings.postgres_dsn)
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))  # never the password


def sqlite_file(settings: Settings) -> Path:
    return Path(settings.resolved_database_url.split(":///", 1)[1]).resolve()


def announce(settings: Settings) -> None:
    """One line on stderr naming the installation (stdout stays for results)."""
    where = f"eventrelay: data directory {data_dir(settings)}"
    if not settings.is_sqlite:
        where += f", database {_database_label(settings)}"
    click.echo(where, err=True)


def _missing(settings: Settings) -> str | None:
    needs_dir = settings.is_sqlite or settings.secret_key is None
    if needs_dir and not settings.data_dir.exists():
        return f"there is no data directory {data_dir(settings)}"
    if settings.is_sqlite and not sqlite_file(settings).exists():
        return f"there is no database {sqlite_file(settings)}"
    if settings.secret_key is None and not settings.key_file.exists():
        return f"there is no key file {settings.key_file.resolve()} (nor EVENTRELAY_SECRET_KEY)"
    return None


def require_installation(settings: Settings) -> None:
    """Refuse (exit 1, no traceback) when the command would otherwise create a new, empty
    installation: a data directory, SQLite database or key file that does not exist yet."""
    missing = _missing(settings)
    if missing:
        raise click.ClickException(
            f"no eventrelay installation found: {missing}. This command does not create one: "
            f"{HOW_TO_POINT} (`eventrelay migrate` creates a new installation on purpose)."
        )


def refuse_if_held(settings: Settings) -> None:
    """Before a process that consumes the embedded queue starts: if another one already does,
    say who (pid, command, address) and stop, instead of failing inside the server."""
    if settings.queue_url:
        return  # NATS: any number of consumers
    holder = lock_holder(settings.queue_path)
    if holder is None:
        return
    raise click.ClickException(
        f"another eventrelay process{describe_holder(holder)} holds the data directory "
        f"{data_dir(settings)}. Stop it first, give this one its own data directory "
        "(--data-dir or EVENTRELAY_DATA_DIR), or run this one as API only "
        "(`eventrelay serve --no-workers`, sharing the data directory)."
    )
