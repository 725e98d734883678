"""bqemulator (DuckDB-backed BigQuery emulator) as a process of its own, run from the virtualenv
`make install-test` makes for it (.venv/bqemulator: its duckdb and sqlglot pins clash with
fakesnow's), with HOME pointing at the DuckDB extension directory the Makefile filled from the
duckdb-extension-spatial wheel, so it starts without a download."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.server import free_port

PROJECT = "eventrelay-test"
VENV = Path(os.environ.get("EVENTRELAY_TEST_BQEMULATOR_VENV", Path(sys.prefix) / "bqemulator"))


def emulator_available() -> bool:
    return (VENV / "bin" / "bqemulator").exists()


class Emulator:
    """bqemulator in a process of its own (its DuckDB build differs from fakesnow's)."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(root / "bqemulator.log", "w")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "HOME": str(VENV / "home")}
        self.proc = subprocess.Popen(
            [
                str(VENV / "bin" / "bqemulator"),
                "start",
                "--rest-port",
                str(self.port),
                "--grpc-port",
                "0",
                "--project",
                PROJECT,
                "--ephemeral",
                "--log-level",
                "error",
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bqemulator exited: see {root / 'bqemulator.log'}")
            try:
                r = httpx.get(f"{self.url}/bigquery/v2/projects/{PROJECT}/datasets", timeout=1)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("bqemulator did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.kill()  # in memory only: nothing to shut down cleanly
        self.proc.wait()
        self.log.close()
