"""What the benchmark phases share: processes, an eventrelay server on a fresh data directory,
configuring a source with webhook integrations, load generation (wrk or bench/load.py), and
reading the sink's and the API's counters."""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
PYTHON = sys.executable
BATCH = 500  # events per batched request (bench/wrk/batch.lua, bench/load.py)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of the process plus its children (`serve --processes N`)."""
    return _rss_mb(pid, "VmHWM")


def current_rss_mb(pid: int) -> float:
    """Resident memory now of the process plus its children."""
    return _rss_mb(pid, "VmRSS")


def _rss_mb(pid: int, field: str) -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return float("nan")
    match = re.search(rf"{field}:\s+(\d+) kB", text)
    own = int(match.group(1)) / 1024 if match else float("nan")
    return own + sum(_rss_mb(int(child), field) for child in children)


@contextmanager
def process(
    args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        args,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def eventrelay(workers: bool) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """An embedded `eventrelay serve` on a fresh data directory: (base URL, process, data dir)."""
    data = Path(tempfile.mkdtemp(prefix="eventrelay-bench-"))
    port = free_port()
    args = [PYTHON, "-m", "eventrelay", "serve", "--port", str(port)]
    if not workers:
        args.append("--no-workers")
    env = {
        "EVENTRELAY_DATA_DIR": str(data),
        "EVENTRELAY_ALLOW_PRIVATE_TARGETS": "1",
        "EVENTRELAY_LOG_LEVEL": "WARNING",
        "EVENTRELAY_PROCESSES": os.environ.get("EVENTRELAY_PROCESSES", "1"),
    }
    try:
        with process(args, env) as proc:
            base = f"http://127.0.0.1:{port}"
            wait_http(base + "/healthz")
            yield base, proc, data
    finally:
        shutil.rmtree(data, ignore_errors=True)


def configure(
    base: str, data: Path, sink: str, batch_interval_ms: int = 50, integrations: int = 1
) -> str:
    """A source with `integrations` batched webhook integrations to the sink; its write key."""
    token = (data / "owner-token").read_text().strip()
    admin = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    source = admin.post("/v1/admin/sources", json={"name": "bench"}).json()
    for number in range(1, integrations + 1):
        r = admin.post(
            "/v1/admin/integrations",
            json={
                "source_id": source["id"],
                "type": "webhook",
                "name": "bench sink" if integrations == 1 else f"bench sink {number}",
                "config": {
                    "url": sink + "/hook",
                    "batch": True,
                    "batch_size": BATCH,
                    "batch_interval_ms": batch_interval_ms,
                },
            },
        )
        r.raise_for_status()
    return str(source["write_key"])


# --- load generation -------------------------------------------------------------------------


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def wrk_command(
    base: str, script: str, threads: int, connections: int, seconds: int, timeout: int = 2
) -> list[str]:
    return [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={timeout}s",
        "-s",
        str(BENCH / "wrk" / script),
        base,
    ]


def wrk_env(write_key: str) -> dict[str, str]:
    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    return {**os.environ, "EVENTRELAY_BENCH_AUTH": auth, "EVENTRELAY_BENCH_DIR": str(BENCH / "wrk")}


def run_wrk(
    base: str, write_key: str, script: str, threads: int, connections: int, seconds: int
) -> float:
    out = subprocess.run(
        wrk_command(base, script, threads, connections, seconds),
        capture_output=True,
        text=True,
        env=wrk_env(write_key),
        check=True,
    ).stdout
    if "Non-2xx" in out:
        print(out, file=sys.stderr)
        raise RuntimeError("wrk saw non-2xx responses")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def run_python_load(base: str, write_key: str, mode: str, connections: int, seconds: int) -> float:
    out = subprocess.run(
        [PYTHON, str(BENCH / "load.py"), base, write_key, mode, str(connections), str(seconds)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out.strip().splitlines()[-1])


def load(base: str, write_key: str, mode: str, seconds: int) -> float:
    """Requests per second of `mode` (batch: 500 events per request; single: 1)."""
    if wrk_available():
        if mode == "batch":
            return run_wrk(base, write_key, "batch.lua", 1, 8, seconds)
        return run_wrk(base, write_key, "single.lua", 2, 64, seconds)
    return run_python_load(base, write_key, mode, 8 if mode == "batch" else 64, seconds)


def batch_load_command(base: str, write_key: str, seconds: int, timeout: int = 2) -> list[str]:
    """The batched load of `load(..., "batch", ...)` as a command to start in the background."""
    if wrk_available():
        return wrk_command(base, "batch.lua", 1, 8, seconds, timeout)
    return [PYTHON, str(BENCH / "load.py"), base, write_key, "batch", "8", str(seconds)]


def wrk_event_template() -> str:
    """The event of bench/wrk/batch.lua (its `local event = '...' .. '...'` literal), with
    `MSGID` where each copy gets its messageId."""
    lua = (BENCH / "wrk" / "batch.lua").read_text()
    statement = re.search(r"local event = (.*?)\n\s*local events", lua, re.DOTALL)
    if statement is None:
        raise RuntimeError("bench/wrk/batch.lua has no `local event = ...` statement")
    return "".join(re.findall(r"'([^']*)'", statement.group(1)))


# --- counters --------------------------------------------------------------------------------


def sink_stats(sink: str) -> dict[str, Any]:
    return httpx.get(sink + "/stats").json()  # type: ignore[no-any-return]


def wait_delivered(sink: str, expected: int, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    stats = sink_stats(sink)
    while stats["events"] < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        stats = sink_stats(sink)
    return stats


def accepted_events(base: str) -> int:
    """Events the API process accepted (made durable) so far: its Prometheus counter, which it
    raises only after the queue has stored a request's events."""
    text = httpx.get(base + "/metrics", timeout=30).text
    pattern = r'^eventrelay_ingest_events_total\{[^}]*result="accepted"[^}]*\} ([\d.e+]+)$'
    return round(sum(float(v) for v in re.findall(pattern, text, re.MULTILINE)))


def wait_accepted_settle(
    base: str, quiet: float = 1.0, timeout: float = 120
) -> tuple[int, float | None]:
    """After a load ended: until the accepted count stopped moving for `quiet` seconds (the
    requests still in flight are answered). Returns the count and the monotonic time it last
    rose, None when it did not rise after the load."""
    count, changed = accepted_events(base), time.monotonic()
    rose: float | None = None
    deadline = changed + timeout
    while time.monotonic() - changed < quiet and time.monotonic() < deadline:
        time.sleep(0.1)
        now = accepted_events(base)
        if now != count:
            count, changed = now, time.monotonic()
            rose = changed
    return count, rose
