"""The migrations build exactly the tables the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from eventrelay.settings import Settings
from eventrelay.store import migrate
from eventrelay.store.db import Database
from eventrelay.store.tables import metadata
from eventrelay.timeutil import utcnow
from tests.support.services import POSTGRES_ADMIN_URL, port_open, require


async def test_migrated_schema_matches_tables(settings: Settings) -> None:
    db = Database(settings.resolved_database_url)

    def compare(sync_conn: Any) -> list[Any]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": False})
        return list(compare_metadata(context, metadata))

    try:
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(compare)
    finally:
        await db.close()
    assert diff == []


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no migrations applied) on SQLite or PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    parts = urlsplit(POSTGRES_ADMIN_URL)
    require(
        port_open(parts.hostname or "127.0.0.1", parts.port or 5432),
        "PostgreSQL",
        "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    )
    name = f"eventrelay_mig_{os.getpid()}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}"'))
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield (
        "postgresql+asyncpg://"
        + urlunsplit((parts.scheme, parts.netloc, "/" + name, "", "")).split("://", 1)[1]
    )
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_upgrade_drops_stored_responses(fresh_database: str) -> None:
    """Before 0004 a finished idempotency record held the response body, with the plaintext of
    a token created under an Idempotency-Key: the upgrade removes those records."""
    migrate.upgrade(fresh_database, "0002")
    secret = "ert_plaintext_token_from_an_old_version"

    async def seed_and_read(after: bool) -> list[Any]:
        db = Database(fresh_database)
        try:
            async with db.engine.begin() as conn:
                if not after:
                    await conn.execute(
                        text(
                            "INSERT INTO idempotency_keys (org_id, key, request_hash, state,"
                            " response_status, response_body, created_at, expires_at) VALUES"
                            " ('org_1', 'k', 'h', 'done', 201, :body, :now, :now)"
                        ),
                        {"body": f'{{"token": "{secret}"}}', "now": utcnow()},
                    )
                rows = await conn.execute(text("SELECT * FROM idempotency_keys"))
                return [tuple(r) for r in rows]
        finally:
            await db.close()

    assert secret in repr(asyncio.run(seed_and_read(after=False)))
    migrate.upgrade(fresh_database)
    assert asyncio.run(seed_and_read(after=True)) == []
