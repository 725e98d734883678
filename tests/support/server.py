"""A real uvicorn server in a background thread (for clients that need a real socket)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_in_thread(app: Any, port: int | None = None, keep_alive: int = 5) -> Iterator[str]:
    port = port or free_port()
    # The asyncio loop, not uvloop: its name lookups go through socket.getaddrinfo, which the
    # offline guard watches (tests/support/offline.py).
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        lifespan="on",
        access_log=False,
        loop="asyncio",
        # A client reusing a pooled connection just as the server closes it for idleness gets a
        # connection error: clients that pause for long (fuzzers) ask for a longer keep-alive.
        timeout_keep_alive=keep_alive,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
