"""Shared fixtures: real SQLite files and a real PostgreSQL database per test worker."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from cryptography.fernet import Fernet

from eventrelay.settings import Settings
from eventrelay.store import migrate
from eventrelay.store.tables import metadata
from tests.support.offline import OfflineGuard, offline
from tests.support.pipeline import Pipeline, running_pipeline
from tests.support.services import NATS_URL, POSTGRES_ADMIN_URL, port_open, require
from tests.support.sink import Sink

os.environ.setdefault("EVENTRELAY_LOG_LEVEL", "WARNING")

_OFFLINE = OfflineGuard()


@pytest.fixture(scope="session", autouse=True)
def _offline_session() -> Iterator[OfflineGuard]:
    """No test resolves or connects to a host outside this machine (tests/support/offline.py)."""
    with offline(_OFFLINE):
        yield _OFFLINE


@pytest.fixture(autouse=True)
def _stays_offline(_offline_session: OfflineGuard) -> Iterator[None]:
    yield
    found = _offline_session.take()
    if found:
        pytest.fail(
            "the test resolved or connected to hosts outside this machine: "
            + ", ".join(sorted(set(found)))
            + " (inject a resolver with Runtime.resolver, or use a .invalid name)"
        )


def _pg_url(database: str) -> str:
    parts = urlsplit(POSTGRES_ADMIN_URL)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, "", ""))


def _pg_reachable() -> bool:
    parts = urlsplit(POSTGRES_ADMIN_URL)
    return port_open(parts.hostname or "127.0.0.1", parts.port or 5432)


@pytest.fixture(scope="session")
def worker_id_safe(request: pytest.FixtureRequest) -> str:
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    return str(worker).replace("-", "_")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy (much faster than migrating again)."""
    path = tmp_path_factory.mktemp("template") / "eventrelay.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database(worker_id_safe: str) -> Iterator[str | None]:
    """A fresh, migrated PostgreSQL database for this test worker (None when unreachable)."""
    if not _pg_reachable():
        yield None
        return
    name = f"eventrelay_test_{worker_id_safe}_{os.getpid()}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}"'))
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = _pg_url(name)
    migrate.upgrade("postgresql+asyncpg://" + url.split("://", 1)[1])
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_database: str | None,
) -> AsyncIterator[str]:
    """Each API test runs twice: on a SQLite file and on the machine's PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "eventrelay.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    pg = postgres_database
    require(
        pg is not None,
        "PostgreSQL",
        "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    )
    assert pg is not None
    await _truncate(pg)
    yield pg


@pytest.fixture
async def settings(tmp_path: Path, database_url: str) -> AsyncIterator[Settings]:
    """The two deployment shapes: embedded (SQLite store and queue) for the sqlite param,
    scale-out (PostgreSQL and the machine's NATS JetStream) for the postgres param. Each
    scale-out test gets its own JetStream stream and subjects, deleted afterwards."""
    base = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key=Fernet.generate_key().decode(),
        allow_private_targets=True,
    )
    if database_url.startswith("sqlite"):
        yield base
        return
    host, port = NATS_URL.removeprefix("nats://").split(":")
    require(
        port_open(host, int(port)),
        f"NATS JetStream at {NATS_URL}",
        "start it with: start-stop-daemon --start --oknodo --background --exec "
        "/usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server",
    )
    tag = uuid.uuid4().hex[:12]
    yield base.model_copy(
        update={
            "queue_url": NATS_URL,
            "nats_stream": f"ER_TEST_{tag}",
            "nats_subject_prefix": f"ertest.{tag}",
            "nats_storage": "memory",
        }
    )
    for stream in (f"ER_TEST_{tag}_LOG", f"ER_TEST_{tag}"):  # the log, a legacy one if made
        await _delete_stream(stream)


async def _delete_stream(name: str) -> None:
    import nats

    try:
        nc = await nats.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=0)
    except Exception:
        return
    try:
        await nc.jetstream().delete_stream(name)
    except Exception:
        pass
    finally:
        await nc.close()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    """A local webhook receiver standing in for a vendor (tests/support/sink.py)."""
    s = await Sink().start()
    yield s
    await s.close()


@pytest.fixture
async def pipe(settings: Settings) -> AsyncIterator[Pipeline]:
    """API and delivery in one process, in the shape of `settings` (a module may override it
    with a pipeline of other settings)."""
    async with running_pipeline(settings) as p:
        yield p
