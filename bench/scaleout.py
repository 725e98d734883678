"""Scale-out benchmark phase: one `eventrelay serve --no-workers` API process plus N
`eventrelay worker` processes on PostgreSQL (control plane) and NATS JetStream (delivery queue),
for N = 1 and N = 2.

Every run gets a fresh database `eventrelay_bench_<random>` on the machine's PostgreSQL and its
own `nats-server` on a free port with a temporary store directory (never the machine's NATS on
4222); processes, store directory and database are removed afterwards, also on Ctrl-C or error.
Each run has two steps (wrk, 500-event batches, batched webhook to the bench sink):
 1. API-only ingest for `--seconds` before any worker runs, then the workers start and deliver
    that backlog: ingest into JetStream alone, and delivery capacity with no ingest competing;
 2. the embedded end-to-end workload: batched ingest while the workers deliver, then wait until
    the sink has every acknowledged event.
Each step records the events each worker delivered and per-process CPU, so whether the workers
share the work is visible. Prints figures; asserts nothing.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    BATCH,
    PYTHON,
    configure,
    free_port,
    load,
    process,
    sink_stats,
    wait_delivered,
    wait_http,
)

POSTGRES = os.environ.get("EVENTRELAY_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
NATS_SERVER = os.environ.get("EVENTRELAY_BENCH_NATS_SERVER", "/usr/sbin/nats-server")
WORKER_COUNTS = (1, 2)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- external services -----------------------------------------------------------------------


def postgres_execute(sql: str) -> None:
    """Run one statement on the bench PostgreSQL server (asyncpg: already an eventrelay dep)."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(f"{POSTGRES}/postgres", timeout=3)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def missing_prerequisite() -> str | None:
    """Why the phase cannot run here, or None."""
    if not os.access(NATS_SERVER, os.X_OK):
        return f"nats-server binary not found at {NATS_SERVER} (set EVENTRELAY_BENCH_NATS_SERVER)"
    try:
        postgres_execute("SELECT 1")
    except Exception as exc:  # connection refused, auth, missing driver: all mean "skip"
        return f"PostgreSQL not reachable at {POSTGRES} ({type(exc).__name__}: {exc})"
    return None


@contextmanager
def database() -> Iterator[str]:
    """A fresh database for one run; dropped afterwards (FORCE: PostgreSQL 13+)."""
    name = f"eventrelay_bench_{secrets.token_hex(4)}"
    postgres_execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        postgres_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_tcp(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@contextmanager
def nats_server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Our own JetStream server on a free port with a throw-away store directory."""
    store = Path(tempfile.mkdtemp(prefix="eventrelay-bench-nats-"))
    port = free_port()
    args = [NATS_SERVER, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)]
    try:
        with process(args) as proc:
            wait_tcp(port)
            yield f"nats://127.0.0.1:{port}", proc
    finally:
        shutil.rmtree(store, ignore_errors=True)


def nats_version() -> str:
    out = subprocess.run([NATS_SERVER, "--version"], capture_output=True, text=True).stdout
    return out.strip().removeprefix("nats-server: ")


# --- the eventrelay processes ----------------------------------------------------------------


def shared_env(data: Path, database_url: str, queue_url: str) -> dict[str, str]:
    """Environment of every process of one run (one Fernet key so all can read the secrets)."""
    from cryptography.fernet import Fernet

    return {
        "EVENTRELAY_DATA_DIR": str(data),
        "EVENTRELAY_DATABASE_URL": database_url,
        "EVENTRELAY_QUEUE_URL": queue_url,
        "EVENTRELAY_SECRET_KEY": Fernet.generate_key().decode(),
        "EVENTRELAY_ALLOW_PRIVATE_TARGETS": "1",
        "EVENTRELAY_LOG_LEVEL": "WARNING",
    }


def wait_worker(url: str, timeout: float = 30) -> None:
    """Until the worker's supervisor runs a delivery loop for the bench integration."""
    wait_http(url + "/healthz", timeout)
    deadline = time.monotonic() + timeout
    while httpx.get(url + "/healthz").json().get("integrations", 0) < 1:
        if time.monotonic() > deadline:
            raise RuntimeError(f"worker at {url} picked up no integration")
        time.sleep(0.1)


@dataclass
class Worker:
    url: str
    proc: subprocess.Popen[bytes]


def start_workers(stack: ExitStack, count: int, env: dict[str, str]) -> list[Worker]:
    workers = []
    for _ in range(count):
        port = free_port()
        args = [PYTHON, "-m", "eventrelay", "worker", "--port", str(port)]
        workers.append(Worker(f"http://127.0.0.1:{port}", stack.enter_context(process(args, env))))
    for worker in workers:
        wait_worker(worker.url)
    return workers


# --- measurements ----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def runqueue_seconds(pid: int) -> float:
    """Time the process's threads were runnable but waited for a core (/proc/.../schedstat)."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[1])
        except (OSError, IndexError, ValueError):  # a thread that just ended
            continue
    return total / 1e9


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all cores so far (/proc/stat): is the machine saturated?"""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def delivered_by(worker: Worker) -> int:
    """Events this worker process delivered successfully (its Prometheus counter)."""
    text = httpx.get(worker.url + "/metrics").text
    pattern = r'^eventrelay_delivery_events_total\{[^}]*outcome="successes"[^}]*\} ([\d.e+]+)$'
    return round(sum(float(v) for v in re.findall(pattern, text, re.MULTILINE)))


class CpuWindow:
    """Since creation: CPU of the given processes (100 % = one core), the time they waited for a
    core while runnable (high = CPU-starved, not idle), and how busy the whole machine was."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.started = time.monotonic()
        self.before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        self.wait_before = {name: runqueue_seconds(pid) for name, pid in pids.items()}
        self.machine_before = machine_cpu()

    def _percent(self, now: dict[str, float], before: dict[str, float]) -> dict[str, int]:
        window = time.monotonic() - self.started
        return {name: round((now[name] - before[name]) / window * 100) for name in self.pids}

    def result(self) -> dict[str, Any]:
        cpu = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        wait = {name: runqueue_seconds(pid) for name, pid in self.pids.items()}
        busy, total = machine_cpu()
        busy_before, total_before = self.machine_before
        return {
            "cpu_percent": self._percent(cpu, self.before),
            "runqueue_wait_percent": self._percent(wait, self.wait_before),
            "machine_busy_percent": round((busy - busy_before) / (total - total_before) * 100),
        }


def per_request(stats: dict[str, Any]) -> float:
    """Events per webhook request at the sink: the batch size the workers actually pulled."""
    return round(stats["events"] / stats["requests"], 1) if stats["requests"] else 0.0


def rate(stats: dict[str, Any]) -> int:
    """Delivered events/s at the sink: events over the time from first to last arrival."""
    elapsed = stats["last"] - stats["first"] if stats["first"] else 0
    return round(stats["events"] / elapsed) if elapsed else 0


def acked_events(rps: float, seconds: int) -> int:
    # As in the embedded phase: wrk may have a last partial second, so wait for 98 %.
    return int(rps * BATCH * seconds * 0.98)


def wait_quiet(sink: str, quiet: float = 1.0) -> None:
    """Until the sink saw no new event for `quiet` seconds (stragglers of the last step)."""
    last = sink_stats(sink)["events"]
    while True:
        time.sleep(quiet)
        now = sink_stats(sink)["events"]
        if now == last:
            return
        last = now


def worker_pids(workers: list[Worker]) -> dict[str, int]:
    return {f"worker_{i}": w.proc.pid for i, w in enumerate(workers, 1)}


def prefixed(prefix: str, figures: dict[str, Any]) -> dict[str, Any]:
    return {prefix + name: value for name, value in figures.items()}


def api_only_then_backlog(
    base: str,
    key: str,
    sink: str,
    seconds: int,
    servers: dict[str, int],
    start: Callable[[], list[Worker]],
) -> tuple[dict[str, Any], list[Worker]]:
    """Ingest with no worker running (API and JetStream alone), then start the workers and time
    how fast they deliver that backlog: delivery capacity without ingest competing for CPU."""
    httpx.post(sink + "/reset")
    window = CpuWindow(servers)
    rps = load(base, key, "batch", seconds)
    ingest = window.result()
    workers = start()
    window = CpuWindow({"nats": servers["nats"], **worker_pids(workers)})
    stats = wait_delivered(sink, acked_events(rps, seconds))
    result = {
        "api_only_ingest_events_per_s": round(rps * BATCH),
        **prefixed("api_only_", ingest),
        "backlog_delivery_events_per_s": rate(stats),
        "backlog_delivered_per_worker": [delivered_by(w) for w in workers],
        "backlog_events_per_request": per_request(stats),
        **prefixed("backlog_", window.result()),
    }
    wait_quiet(sink)
    return result, workers


def end_to_end(
    base: str, key: str, sink: str, seconds: int, pids: dict[str, int], workers: list[Worker]
) -> dict[str, Any]:
    """Batched ingest for `seconds` while the workers deliver, then wait until the sink has
    every acknowledged event (the embedded end-to-end phase, in the scale-out shape)."""
    httpx.post(sink + "/reset")
    before = [delivered_by(w) for w in workers]
    window = CpuWindow(pids)
    rps = load(base, key, "batch", seconds)
    load_ended = time.monotonic()
    stats = wait_delivered(sink, acked_events(rps, seconds))
    return {
        "ingest_events_per_s": round(rps * BATCH),
        "end_to_end_events_per_s": rate(stats),
        "delivered": stats["events"],
        "events_per_request": per_request(stats),
        "drain_after_load_s": round(time.monotonic() - load_ended, 1),
        "delivered_per_worker": [delivered_by(w) - b for w, b in zip(workers, before, strict=True)],
        **window.result(),
    }


@dataclass
class Cluster:
    """The scale-out shape with its API process running and no worker yet."""

    base: str
    data: Path
    env: dict[str, str]
    api: subprocess.Popen[bytes]
    nats: subprocess.Popen[bytes]
    stack: ExitStack  # workers started with it stop with the cluster


@contextmanager
def cluster() -> Iterator[Cluster]:
    """A fresh database, a fresh NATS server and one `serve --no-workers` API process; all
    removed afterwards (bench/fanout.py uses it too)."""
    data = Path(tempfile.mkdtemp(prefix="eventrelay-bench-scaleout-"))
    try:
        with database() as db_url, nats_server() as (nats_url, nats), ExitStack() as stack:
            env = shared_env(data, db_url, nats_url)
            port = free_port()
            api_args = [PYTHON, "-m", "eventrelay", "serve", "--no-workers", "--port", str(port)]
            api = stack.enter_context(process(api_args, env))
            base = f"http://127.0.0.1:{port}"
            wait_http(base + "/healthz")
            yield Cluster(base, data, env, api, nats, stack)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def run_once(sink: str, seconds: int, worker_count: int) -> dict[str, Any]:
    """One API process + `worker_count` workers on a fresh database and NATS server."""
    with cluster() as c:
        key = configure(c.base, c.data, sink)
        servers = {"api": c.api.pid, "nats": c.nats.pid}
        backlog, workers = api_only_then_backlog(
            c.base, key, sink, seconds, servers, lambda: start_workers(c.stack, worker_count, c.env)
        )
        pids = {**servers, **worker_pids(workers)}
        return {
            "workers": worker_count,
            **backlog,
            **end_to_end(c.base, key, sink, seconds, pids, workers),
        }


def phase_scaleout(sink: str, seconds: int) -> dict[str, Any]:
    """The `scaleout` entry of the results: the runs, or why the phase was skipped."""
    reason = missing_prerequisite()
    if reason:
        return {"skipped": reason}
    runs = []
    for count in WORKER_COUNTS:
        print(f"  1 API + {count} worker(s) ...", flush=True)
        runs.append(run_once(sink, seconds, count))
    return {
        "cpus": os.cpu_count(),
        "load_average_before": round(os.getloadavg()[0], 1),
        "shape": f"PostgreSQL + NATS JetStream {nats_version()} (file storage, 1 replica)",
        "runs": runs,
    }


# --- report ----------------------------------------------------------------------------------


COLUMNS = (
    ("API-only ingest", "api_only_ingest_events_per_s"),
    ("e2e ingest", "ingest_events_per_s"),
    ("e2e delivered", "end_to_end_events_per_s"),
    ("backlog delivery", "backlog_delivery_events_per_s"),
)
EMBEDDED = {  # the same figures from the embedded phases, when they ran in this invocation
    "api_only_ingest_events_per_s": "batched_ingest_events_per_s",
    "ingest_events_per_s": "end_to_end_ingest_events_per_s",
    "end_to_end_events_per_s": "end_to_end_events_per_s",
}


def table_row(label: str, figures: dict[str, Any]) -> str:
    cells = "".join(
        f"{figures[key]:>18,}" if key in figures else f"{'-':>18}" for _, key in COLUMNS
    )
    return f"  {label:<22}{cells}"


def print_report(results: dict[str, Any]) -> None:
    """Embedded (from the phases that ran in this invocation) vs the scale-out runs."""
    scaleout = results.get("scaleout") or {}
    if "skipped" in scaleout:
        print(f"scale-out: skipped: {scaleout['skipped']}")
        return
    print(
        f"scale-out: {scaleout['shape']}; {scaleout['cpus']} CPU cores shared by every process "
        f"(API, workers, NATS, PostgreSQL, wrk, sink); 1-min load average before the phase "
        f"{scaleout['load_average_before']}"
    )
    print(f"  {'events/s':<22}" + "".join(f"{title:>18}" for title, _ in COLUMNS))
    embedded = {ours: results[theirs] for ours, theirs in EMBEDDED.items() if theirs in results}
    if embedded:
        print(table_row("embedded (1 process)", embedded))
    for run in scaleout["runs"]:
        print(table_row(f"1 API + {run['workers']} worker(s)", run))
    print("  per process: CPU % / waited-for-a-core % of the step (100 % = one core)")
    for run in scaleout["runs"]:
        for step, prefix, per_worker in (
            ("API-only ingest", "api_only_", None),
            ("backlog", "backlog_", run["backlog_delivered_per_worker"]),
            ("end to end", "", run["delivered_per_worker"]),
        ):
            cpu, wait = run[prefix + "cpu_percent"], run[prefix + "runqueue_wait_percent"]
            usage = ", ".join(f"{name} {cpu[name]}/{wait[name]}" for name in cpu)
            delivered = f"events per worker {per_worker}; " if per_worker else ""
            print(
                f"  {run['workers']} worker(s), {step}: {delivered}"
                f"{usage}; machine busy {run[prefix + 'machine_busy_percent']}%"
            )
        print(
            f"    events per webhook request: backlog {run['backlog_events_per_request']}, "
            f"end to end {run['events_per_request']}; delivery ran on "
            f"{run['drain_after_load_s']} s after the end-to-end load"
        )
