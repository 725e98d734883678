"""`eventrelay sink`: a local webhook receiver for trials (the README Quickstart). It prints every
request it receives (method, path, Standard Webhooks headers, JSON body) and answers 200, or the
status given, to watch eventrelay retry. A development tool: it listens on loopback by default
and keeps nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from typing import Any

import click
from aiohttp import web

SHOWN_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature", "user-agent")


def _render(method: str, path: str, headers: dict[str, str], body: bytes) -> str:
    lines = [f"--> {method} {path}"]
    for name in SHOWN_HEADERS:
        if name in headers:
            lines.append(f"    {name}: {headers[name]}")
    try:
        data: Any = json.loads(body) if body else None
    except ValueError:
        lines.append(body.decode("utf-8", errors="replace"))
    else:
        if isinstance(data, list):
            lines.append(f"    ({len(data)} events)")
        lines.append(json.dumps(data, indent=2, ensure_ascii=False))
    return "\n".join(lines)


async def _serve(host: str, port: int, status: int) -> None:
    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        click.echo(_render(request.method, request.path_qs, headers, body))
        return web.json_response({"received": True}, status=status)

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    click.echo(f"eventrelay sink: listening on http://{host}:{port}/ (Ctrl-C stops)", err=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address.")
@click.option("--port", default=9000, show_default=True, type=int)
@click.option(
    "--status",
    default=200,
    show_default=True,
    type=click.IntRange(200, 599),
    help="Answer every request with this status (e.g. 500 to watch retries).",
)
def sink(host: str, port: int, status: int) -> None:
    """A local webhook receiver for trying eventrelay out: prints what it receives."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(host, port, status))
