"""ASGI application factory and lifespan.

One ASGI app serves both APIs: ingest paths go straight to the plain ASGI ingest handler (the
hot path), everything else to the FastAPI admin app, which owns the lifespan (start and drain of
the runtime).
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.types import Receive, Scope, Send

from eventrelay import __version__, logs
from eventrelay.api import errors
from eventrelay.api.ingest import PATHS as INGEST_PATHS
from eventrelay.api.ingest import IngestApp
from eventrelay.api.limits import BodySizeLimit
from eventrelay.api.openapi_ingest import add_ingest_paths
from eventrelay.api.openapi_links import add_links
from eventrelay.api.routes import (
    audit,
    catalog,
    delivery,
    health,
    integrations,
    org,
    sources,
    telemetry,
    tokens,
)
from eventrelay.control.bootstrap import ensure_owner
from eventrelay.delivery.plane import DeliveryPlane
from eventrelay.runtime import Runtime
from eventrelay.settings import Settings

log = logging.getLogger("eventrelay.app")

DESCRIPTION = """Server-side event delivery: Segment-spec events in, vendor-correct requests out.

Ingest endpoints (`/v1/track`, `/v1/batch`, ...) take the source's write key as the HTTP Basic
username. Admin endpoints take `Authorization: Bearer <token>`. Errors are
`{"error": {"code", "message", "details"?}}`; lists are cursor-paginated."""


def tune_gc() -> None:
    """Ingest allocates thousands of short-lived objects per request, nearly all freed by
    reference counting. Python's default thresholds would run a collection every 700
    allocations and full ones over the whole heap; freezing start-up objects and raising the
    first threshold keeps the collector for the cycles it exists for (measured: batched ingest
    ~1.6x faster, see bench/README.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


class EventRelayApp:
    """Routes ingest paths to the ingest handler, the rest to the admin app."""

    def __init__(self, admin: FastAPI, ingest: IngestApp) -> None:
        self.admin = admin
        self.ingest = ingest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in INGEST_PATHS:
            await self.ingest(scope, receive, send)
        else:
            await self.admin(scope, receive, send)


# `serve --processes N` hands the role to its children through the environment.
SERVE_WORKERS_ENV = "EVENTRELAY_SERVE_WORKERS"
SERVE_ACCESS_LOG_ENV = "EVENTRELAY_SERVE_ACCESS_LOG"


def app_from_environment() -> EventRelayApp:
    """App factory for `serve --processes N`: each process builds its own runtime from the
    environment. With the embedded queue, the one process holding its consumer lock delivers
    and the others only take requests; with NATS every process delivers."""
    settings = Settings()
    logs.setup(settings.log_level, access_log=os.environ.get(SERVE_ACCESS_LOG_ENV) == "1")
    workers = os.environ.get(SERVE_WORKERS_ENV, "1") != "0"
    return create_app(
        Runtime.create(settings), bootstrap_owner=True, workers=workers, workers_if_free=True
    )


def create_app(
    rt: Runtime, bootstrap_owner: bool = False, workers: bool = True, workers_if_free: bool = False
) -> EventRelayApp:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if bootstrap_owner:
            secret = await ensure_owner(rt)
            if secret:
                print(
                    "eventrelay: created the owner token (also saved to "
                    f"{rt.settings.owner_token_file}):\n{secret}",
                    flush=True,
                )
        delivers = await rt.start(ingest=True, consume=workers, consume_if_free=workers_if_free)
        plane = DeliveryPlane(rt) if delivers else None
        try:
            if plane is not None:
                await plane.start()
            admin.state.delivery = plane
            tune_gc()
            yield
        finally:
            if plane is not None:
                await plane.close()
            await rt.close()

    # /docs is Swagger UI with its assets served from the fastapi-offline package, not a CDN:
    # it works on a machine without internet access.
    admin = FastAPIOffline(
        title="eventrelay",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        static_url="/docs/assets",
        # operationId = the route function's name ("create_source"), which links refer to.
        generate_unique_id_function=lambda route: route.name,
    )
    admin.state.runtime = rt
    admin.state.delivery = None  # the DeliveryPlane, while this process delivers
    errors.install(admin)
    for module in (
        health,
        telemetry,
        sources,
        integrations,
        delivery,
        tokens,
        catalog,
        audit,
        org,
    ):
        admin.include_router(module.router)
    admin.add_middleware(BodySizeLimit)

    def openapi() -> dict[str, Any]:
        if admin.openapi_schema is None:
            schema = FastAPI.openapi(admin)
            add_ingest_paths(schema)
            add_links(schema)
            admin.openapi_schema = schema
        return admin.openapi_schema

    admin.openapi = openapi  # type: ignore[method-assign]
    return EventRelayApp(admin, IngestApp(rt))
