"""How `eventrelay serve` runs its HTTP server: uvicorn with uvloop and httptools, behind the
connection guard (`guard.py`: head and body limits and deadlines, idle and connection limits),
all set from EVENTRELAY_* settings with safe defaults."""

from __future__ import annotations

from typing import Any

from eventrelay.server import guard
from eventrelay.settings import Settings


def uvicorn_options(settings: Settings, access_log: bool) -> dict[str, Any]:
    limits = guard.Limits.for_process(settings)
    guard.configure(limits)
    return {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": guard.GuardedHttpToolsProtocol,
        "ws": "none",  # no WebSocket endpoints: upgrade requests are plain HTTP requests
        "log_config": None,
        "access_log": access_log,
        "timeout_graceful_shutdown": 30,
        "timeout_keep_alive": limits.keepalive_timeout,
        "backlog": 2048,
    }
