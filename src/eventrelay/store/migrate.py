"""Apply Alembic migrations programmatically (CLI `migrate`, `serve` start-up, tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

from eventrelay.store.db import create_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Scale-out processes may start together: one migrates, the others wait on this lock.
SETUP_LOCK = 0x65766E74  # "evnt"


async def hold_setup_lock(conn: AsyncConnection) -> None:
    """Serialise schema and bootstrap work across processes (PostgreSQL; SQLite locks itself)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SETUP_LOCK})


def _alembic_config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


async def upgrade_async(url: str, revision: str = "head") -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await hold_setup_lock(conn)
            await conn.run_sync(lambda sync: command.upgrade(_alembic_config(sync), revision))
    finally:
        await engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    asyncio.run(upgrade_async(url, revision))
