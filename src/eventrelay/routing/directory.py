"""The in-memory view of sources and integrations that ingest routes with.

Loaded from the database at start and reloaded whenever the config bus reports a change (and
every 30 s as a safety net), so no event ever costs a database query. An organisation's rules (rules/org.py) are compiled
here, once per reload, and shared by the entries of its sources.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from eventrelay.bus import Change, ConfigBus
from eventrelay.destinations import registry
from eventrelay.routing.selection import type_keys
from eventrelay.rules import OrgRules, RulesInvalid, compile_org_rules
from eventrelay.store import integrations as integration_store
from eventrelay.store import orgs as org_store
from eventrelay.store import sources as source_store
from eventrelay.store.db import Database
from eventrelay.tasks import stop_task

log = logging.getLogger("eventrelay.directory")
REFRESH_SECONDS = 30.0

# Stands for stored organisation rules that no longer compile (a stricter engine): ingest
# refuses with a 503, so SDKs keep the events and retry, rather than send unredacted data.
UNUSABLE = OrgRules([], [], [], {})


@dataclass(frozen=True, slots=True)
class Route:
    integration_id: str
    type: str
    name: str
    select_keys: tuple[str, ...]  # keys of an event's `integrations` object that address it
    enabled: bool
    deliverable: bool  # the type has a delivery implementation
    consent_categories: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SourceEntry:
    id: str
    org_id: str
    name: str
    consent_default: str
    allowed_origins: tuple[str, ...]
    routes: tuple[Route, ...]
    # The organisation's rules, applied at ingest before any integration's; None: it has none
    # (the common case costs ingest this one attribute check).
    org_rules: OrgRules | None = None

    def allows_origin(self, origin: str) -> bool:
        return "*" in self.allowed_origins or origin.rstrip("/") in self.allowed_origins


class Directory:
    def __init__(self, db: Database, bus: ConfigBus) -> None:
        self._db = db
        self._bus = bus
        self._by_key: dict[str, SourceEntry] = {}
        self._by_id: dict[str, SourceEntry] = {}
        # Keys in their rotation grace period: epoch second they stop working.
        self._key_expiry: dict[str, float] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def by_write_key(self, key: str) -> SourceEntry | None:
        expires = self._key_expiry.get(key)
        if expires is not None and time.time() >= expires:
            return None
        return self._by_key.get(key)

    def by_id(self, source_id: str) -> SourceEntry | None:
        return self._by_id.get(source_id)

    async def start(self) -> None:
        await self.reload()
        self._bus.subscribe(self._on_change)
        self._task = asyncio.create_task(self._refresh_loop(), name="directory-refresh")

    async def close(self) -> None:
        self._bus.unsubscribe(self._on_change)
        await stop_task(self._task)

    async def _on_change(self, change: Change) -> None:
        if change.kind not in ("source", "integration", "org", "all"):
            return
        try:
            await self.reload()
        except Exception as exc:
            # Stale routing is worse than a retry: try again shortly (and every 30 s anyway).
            log.warning("directory reload failed", extra={"error_type": type(exc).__name__})
            await asyncio.sleep(0.5)
            await self.reload()

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await self.reload()
            except Exception as exc:
                log.warning("directory refresh failed", extra={"error_type": type(exc).__name__})

    async def reload(self) -> None:
        async with self._lock:
            async with self._db.read() as conn:
                sources = await source_store.all_live_with_keys(conn)
                rows = await integration_store.all_live(conn)
                raw_org_rules = await org_store.all_rules(conn)
            org_rules = {org_id: _org_rules(org_id, raw) for org_id, raw in raw_org_rules.items()}
            routes: dict[str, list[Route]] = {}
            for row in rows:
                destination = registry.get(row["type"])
                routes.setdefault(row["source_id"], []).append(
                    Route(
                        integration_id=row["id"],
                        type=row["type"],
                        name=row["name"],
                        select_keys=type_keys(
                            row["type"], destination.title if destination else None
                        ),
                        enabled=bool(row["enabled"]),
                        deliverable=destination is not None and destination.delivers,
                        consent_categories=tuple(row["consent_categories"]),
                    )
                )
            by_key: dict[str, SourceEntry] = {}
            by_id: dict[str, SourceEntry] = {}
            key_expiry: dict[str, float] = {}
            for source, keys in sources:
                entry = SourceEntry(
                    id=source["id"],
                    org_id=source["org_id"],
                    name=source["name"],
                    consent_default=source["consent_default"],
                    allowed_origins=tuple(source["allowed_origins"]),
                    routes=tuple(routes.get(source["id"], ())),
                    org_rules=org_rules.get(source["org_id"]),
                )
                by_id[entry.id] = entry
                for key, expires_at in keys:
                    by_key[key] = entry
                    if expires_at is not None:
                        key_expiry[key] = expires_at.timestamp()
            self._by_key, self._by_id, self._key_expiry = by_key, by_id, key_expiry


def _org_rules(org_id: str, raw: object) -> OrgRules | None:
    try:
        compiled = compile_org_rules(raw)
    except RulesInvalid as exc:
        log.error(
            "organisation rules no longer compile: ingest refuses its events until they are"
            " saved again",
            extra={"org_id": org_id, "error": str(exc)},
        )
        return UNUSABLE
    return None if compiled.empty else compiled
