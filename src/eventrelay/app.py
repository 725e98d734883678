"""ASGI application factory and lifespan.

One ASGI app serves both APIs: ingest paths go straight to the plain ASGI ingest handler (the
hot path), everything else to the FastAPI admin app, which owns the lifespan (start and drain of
the runtime).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.types import Receive, Scope, Send

from eventrelay import __version__, logs
from eventrelay.api import errors
from eventrelay.api.ingest import IngestApp
from eventrelay.api.ingest_http import owns as ingest_owns
from eventrelay.api.limits import BodySizeLimit
from eventrelay.api.openapi_ingest import add_ingest_paths
from eventrelay.api.openapi_links import add_links
from eventrelay.api.routes import (
    audit,
    auth,
    catalog,
    console,
    delivery,
    health,
    integrations,
    live,
    org,
    rules,
    sources,
    telemetry,
    tokens,
    users,
)
from eventrelay.api.text_guard import NulGuard
from eventrelay.control.bootstrap import ensure_owner, ensure_owner_user
from eventrelay.delivery.plane import DeliveryPlane
from eventrelay.queue.sqlite import QueueLocked
from eventrelay.runtime import Runtime
from eventrelay.settings import Settings

log = logging.getLogger("eventrelay.app")

DESCRIPTION = """Server-side event delivery: Segment-spec events in, vendor-correct requests out.

Ingest endpoints (`/v1/track`, `/v1/batch`, ...) take the source's write key as the HTTP Basic
username; their errors are `{"code", "message", "details"?}` (the shape the Segment and
RudderStack SDKs read). Admin endpoints take `Authorization: Bearer <token>`; their errors are
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
    """Routes ingest paths (every path under /v1/ but /v1/admin, and the browser SDKs' few
    others) to the ingest handler, the rest to the admin app."""

    def __init__(self, admin: FastAPI, ingest: IngestApp) -> None:
        self.admin = admin
        self.ingest = ingest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ingest_owns(scope["path"]):
            await self.ingest(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.admin(scope, receive, self._plain_startup_failure(send))
        else:
            await self.admin(scope, receive, send)

    def _plain_startup_failure(self, send: Send) -> Send:
        """A start refused for a reason the operator can act on (another process holds the data
        directory) is reported as that one sentence, not as a traceback."""

        async def wrapped(message: MutableMapping[str, Any]) -> None:
            refused = getattr(self.admin.state, "startup_refused", None)
            if message["type"] == "lifespan.startup.failed" and refused:
                message = {**message, "message": refused}
            await send(message)

        return wrapped


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
    rt = Runtime.create(settings)
    rt.role = {"command": "serve", "address": f"http://{settings.host}:{settings.port}"}
    return create_app(rt, bootstrap_owner=True, workers=workers, workers_if_free=True)


def _on_stop_signal(callback: Callable[[], None]) -> Callable[[], None]:
    """Also run `callback` when uvicorn is told to stop (SIGINT/SIGTERM): open live streams
    then end, instead of holding the graceful shutdown until its timeout. Returns what puts
    the previous handlers back (at shutdown)."""
    installed: list[tuple[int, Any, Any]] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
            callback()
            previous(signum, frame)

        with contextlib.suppress(ValueError):  # not the main thread (tests serving in a thread)
            signal.signal(sig, handler)
            installed.append((sig, handler, previous))

    def restore() -> None:
        for sig, handler, previous in installed:
            if signal.getsignal(sig) is handler:  # nobody replaced it since
                signal.signal(sig, previous)

    return restore


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
            email = await ensure_owner_user(rt)
            if email:
                print(f"eventrelay: created the owner user {email}", flush=True)
        try:
            delivers = await rt.start(ingest=True, consume=workers, consume_if_free=workers_if_free)
        except QueueLocked as exc:
            admin.state.startup_refused = str(exc)
            await rt.close()
            raise
        restore_signals = _on_stop_signal(rt.tap.stop_listeners) if rt.tap else lambda: None
        plane = DeliveryPlane(rt) if delivers else None
        try:
            if plane is not None:
                await plane.start()
            admin.state.delivery = plane
            tune_gc()
            yield
        finally:
            restore_signals()
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
        auth,
        users,
        catalog,
        audit,
        org,
        live,
        console,
        rules,
    ):
        admin.include_router(module.router)
    admin.add_middleware(NulGuard)  # inside BodySizeLimit: it reads bodies already capped
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
