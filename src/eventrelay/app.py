"""ASGI application factory and lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from eventrelay import __version__
from eventrelay.api import errors
from eventrelay.api.limits import BodySizeLimit
from eventrelay.api.routes import audit, catalog, health, integrations, org, sources, tokens
from eventrelay.control.bootstrap import ensure_owner
from eventrelay.runtime import Runtime

log = logging.getLogger("eventrelay.app")

DESCRIPTION = """Server-side event delivery: Segment-spec events in, vendor-correct requests out.

Admin endpoints take `Authorization: Bearer <token>`. Errors are
`{"error": {"code", "message", "details"?}}`; lists are cursor-paginated."""


def create_app(rt: Runtime, bootstrap_owner: bool = False) -> FastAPI:
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
        await rt.bus.start()
        try:
            yield
        finally:
            await rt.close()

    app = FastAPI(
        title="eventrelay",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.runtime = rt
    errors.install(app)
    for module in (health, sources, integrations, tokens, catalog, audit, org):
        app.include_router(module.router)
    app.add_middleware(BodySizeLimit)
    return app
