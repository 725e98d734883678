"""Real `eventrelay` processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.server import free_port


class Server:
    def __init__(self, proc: subprocess.Popen[str], base_url: str, cwd: Path) -> None:
        self.proc = proc
        self.base_url = base_url
        self.cwd = cwd

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


def wait_healthy(base_url: str, proc: subprocess.Popen[str], timeout: float = 90) -> None:
    # Generous: start-up (imports, migrations) took over 30 s on a 2-core machine under load.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError("server did not become healthy")


def _soft_open_files(limit: int) -> None:
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))


@contextmanager
def eventrelay_process(
    cwd: Path,
    args: tuple[str, ...] = ("serve",),
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    module: str = "eventrelay",
    open_files: int | None = None,
) -> Iterator[Server]:
    """`module`: what `python -m` runs (a test launcher installing a stand-in, for example).
    `open_files`: start with this soft limit on open files (Linux's usual default is 1,024)."""
    chosen = port is None  # a free port taken by another test meanwhile: try another
    full_env = {
        **os.environ,
        "EVENTRELAY_LOG_LEVEL": "WARNING",
        "EVENTRELAY_DATA_DIR": str(cwd / ".eventrelay"),
        **(env or {}),
    }
    for attempt in range(3 if chosen else 1):
        port = free_port() if chosen else port
        path = cwd / f"server-{port}.log"
        log = open(path, "a")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args, "--port", str(port)],
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            preexec_fn=(lambda: _soft_open_files(open_files)) if open_files else None,
        )
        server = Server(proc, f"http://127.0.0.1:{port}", cwd)
        try:
            wait_healthy(server.base_url, proc)
            break
        except RuntimeError:
            lost_port = proc.poll() is not None and "address already in use" in path.read_text()
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
            if proc.stdout:
                proc.stdout.close()
            log.close()
            if not (lost_port and attempt < 2 and chosen):
                raise
    try:
        yield server
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
        log.close()
