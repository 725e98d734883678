"""An in-process API client: the real ASGI app (with its lifespan) over httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from eventrelay.app import EventRelayApp, create_app
from eventrelay.delivery.plane import DeliveryPlane
from eventrelay.runtime import Runtime
from eventrelay.settings import Settings


@dataclass
class Api:
    client: httpx.AsyncClient
    runtime: Runtime
    owner_token: str
    tokens: dict[str, str] = field(default_factory=dict)
    delivery: DeliveryPlane | None = None  # the app's delivery plane, when it delivers
    app: EventRelayApp | None = None

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.owner_token}"}

    async def request(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {**self.auth(token), **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def get(self, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        return await self.request("GET", path, token, **kw)

    async def post(self, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        return await self.request("POST", path, token, **kw)

    async def put(self, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        return await self.request("PUT", path, token, **kw)

    async def delete(self, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        return await self.request("DELETE", path, token, **kw)

    async def make_token(self, role: str, name: str | None = None) -> str:
        r = await self.post("/v1/admin/tokens", json={"name": name or role, "role": role})
        assert r.status_code == 201, r.text
        token: str = r.json()["token"]
        self.tokens[role] = token
        return token

    async def make_source(self, name: str = "Web", **extra: Any) -> dict[str, Any]:
        r = await self.post("/v1/admin/sources", json={"name": name, **extra})
        assert r.status_code == 201, r.text
        data: dict[str, Any] = r.json()
        return data

    async def make_integration(self, source_id: str, **body: Any) -> dict[str, Any]:
        payload = {"source_id": source_id, "name": "Integration", **body}
        r = await self.post("/v1/admin/integrations", json=payload)
        assert r.status_code == 201, r.text
        data: dict[str, Any] = r.json()
        return data

    async def stored_integration(
        self, source_id: str, type_: str, config: dict[str, Any], status: str = "active"
    ) -> str:
        """An integration row written straight to the database, as an older version that let any
        catalog type be created left it (the API now refuses types that cannot deliver)."""
        from sqlalchemy import select

        from eventrelay.bus import Change
        from eventrelay.core.config_secrets import split_secrets
        from eventrelay.destinations import registry
        from eventrelay.ids import new_id
        from eventrelay.store import integrations
        from eventrelay.store.tables import sources
        from eventrelay.timeutil import utcnow

        destination = registry.DESTINATIONS[type_]
        public, secrets = split_secrets(destination.Settings.model_validate(config))
        now = utcnow()
        integration_id = new_id("int")
        async with self.runtime.db.transaction() as conn:
            query = select(sources.c.org_id).where(sources.c.id == source_id)
            org_id = (await conn.execute(query)).scalar_one()
            await integrations.insert(
                conn,
                {
                    "id": integration_id,
                    "org_id": org_id,
                    "source_id": source_id,
                    "type": type_,
                    "name": type_,
                    "enabled": status != "paused",
                    "status": status,
                    "config": public,
                    "secrets": self.runtime.vault.encrypt_json(secrets),
                    "consent_categories": list(destination.default_consent),
                    "created_at": now,
                    "updated_at": now,
                },
            )
        await self.runtime.bus.publish(Change("integration", integration_id))
        return integration_id


@asynccontextmanager
async def running_api(settings: Settings) -> AsyncIterator[Api]:
    runtime = Runtime.create(settings)
    app = create_app(runtime, bootstrap_owner=True)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("203.0.113.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            token = settings.owner_token_file.read_text().strip()
            delivery = app.admin.state.delivery
            yield Api(client=client, runtime=runtime, owner_token=token, delivery=delivery, app=app)
