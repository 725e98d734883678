"""`eventrelay worker`: delivery without the HTTP API (scale-out shape).

Optionally serves /healthz, /readyz and /metrics (a small aiohttp server) so the process can be
probed and scraped. SIGTERM/SIGINT stop pulling, let in-flight deliveries finish
(EVENTRELAY_DRAIN_SECONDS) and exit.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from eventrelay.delivery.plane import DeliveryPlane
from eventrelay.runtime import Runtime

log = logging.getLogger("eventrelay.worker")


def health_app(rt: Runtime, plane: DeliveryPlane) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        count = len(plane.supervisor.workers)
        return web.json_response({"status": "ok", "integrations": count})

    async def readyz(_request: web.Request) -> web.Response:
        if not await rt.db.ping():
            error = {"code": "not_ready", "message": "database unreachable"}
            return web.json_response({"error": error}, status=503)
        return web.json_response({"status": "ready"})

    async def metrics(_request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def _serve(rt: Runtime, host: str, port: int | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await rt.start(ingest=False, consume=True)
    plane = DeliveryPlane(rt)
    await plane.start()
    runner: web.AppRunner | None = None
    if port is not None:
        runner = web.AppRunner(health_app(rt, plane), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
    log.info("worker started")
    try:
        await stop.wait()
    finally:
        log.info("worker stopping: draining in-flight deliveries")
        if runner is not None:
            await runner.cleanup()
        await plane.close()
        await rt.close()
        log.info("worker stopped")


def run_worker(rt: Runtime, host: str, port: int | None) -> None:
    try:
        import uvloop
    except ImportError:  # uvloop is an optional speed-up
        asyncio.run(_serve(rt, host, port))
        return
    uvloop.run(_serve(rt, host, port))
