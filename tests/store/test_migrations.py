"""The migrations build exactly the tables the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from eventrelay.settings import Settings
from eventrelay.store.db import Database
from eventrelay.store.tables import metadata


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
