"""eventrelay benchmark: `make bench`. Prints its figures; asserts nothing.

Phases (each on a fresh data directory, eventrelay as a real `eventrelay serve` process):
 1. durable batched ingest (events/s) and single-event ingest (requests/s), API only
    (`--no-workers`) so the figures are ingest alone; events are durable in the queue on 200;
 2. end-to-end: batched ingest while delivering to a batched webhook (events/s delivered);
 3. ingest-to-delivery latency (p50/p95/p99) at a fixed 5,000 events/s;
 4. the same end-to-end workload through plain Celery + Redis (one task per event posting to
    the same sink), and the ratio.

Load comes from `wrk` (C, Lua scripts in bench/wrk/) when installed, else from a Python
client (bench/load.py), which then limits the figures on a small machine. Results also go to
bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
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
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    match = re.search(r"VmHWM:\s+(\d+) kB", text)
    return int(match.group(1)) / 1024 if match else float("nan")


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
    data = Path(tempfile.mkdtemp(prefix="eventrelay-bench-"))
    port = free_port()
    args = [PYTHON, "-m", "eventrelay", "serve", "--port", str(port)]
    if not workers:
        args.append("--no-workers")
    env = {
        "EVENTRELAY_DATA_DIR": str(data),
        "EVENTRELAY_ALLOW_PRIVATE_TARGETS": "1",
        "EVENTRELAY_LOG_LEVEL": "WARNING",
    }
    with process(args, env) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz")
        try:
            yield base, proc, data
        finally:
            pass
    shutil.rmtree(data, ignore_errors=True)


def configure(base: str, data: Path, sink: str, batch_interval_ms: int = 50) -> str:
    token = (data / "owner-token").read_text().strip()
    admin = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
    source = admin.post("/v1/admin/sources", json={"name": "bench"}).json()
    r = admin.post(
        "/v1/admin/integrations",
        json={
            "source_id": source["id"],
            "type": "webhook",
            "name": "bench sink",
            "config": {
                "url": sink + "/hook",
                "batch": True,
                "batch_size": 500,
                "batch_interval_ms": batch_interval_ms,
            },
        },
    )
    r.raise_for_status()
    return str(source["write_key"])


# --- load generation -------------------------------------------------------------------------


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    base: str, write_key: str, script: str, threads: int, connections: int, seconds: int
) -> float:
    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    env = {**os.environ, "EVENTRELAY_BENCH_AUTH": auth, "EVENTRELAY_BENCH_DIR": str(BENCH / "wrk")}
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "-s",
            str(BENCH / "wrk" / script),
            base,
        ],
        capture_output=True,
        text=True,
        env=env,
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


async def fixed_rate(base: str, write_key: str, rate: int, seconds: int, batch: int = 50) -> int:
    """Open-loop load: `rate` events/s as batches of `batch` every batch/rate seconds."""
    import uuid

    import orjson

    auth = {"Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()}
    interval = batch / rate
    sent = 0
    async with httpx.AsyncClient(base_url=base, headers=auth, timeout=30) as client:
        tasks = []
        start = time.monotonic()
        tick = 0
        while time.monotonic() - start < seconds:
            body = orjson.dumps(
                {
                    "batch": [
                        {
                            "type": "track",
                            "userId": "u",
                            "event": "Latency",
                            "messageId": str(uuid.uuid4()),
                        }
                        for _ in range(batch)
                    ]
                }
            )
            tasks.append(asyncio.create_task(client.post("/v1/batch", content=body)))
            sent += batch
            tick += 1
            delay = start + tick * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        for r in await asyncio.gather(*tasks):
            r.raise_for_status()
    return sent


# --- phases ----------------------------------------------------------------------------------


def sink_stats(sink: str) -> dict[str, Any]:
    return httpx.get(sink + "/stats").json()  # type: ignore[no-any-return]


def wait_delivered(sink: str, expected: int, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    stats = sink_stats(sink)
    while stats["events"] < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        stats = sink_stats(sink)
    return stats


def phase_ingest(sink: str, seconds: int) -> dict[str, float]:
    with eventrelay(workers=False) as (base, proc, data):
        key = configure(base, data, sink)
        batch_rps = load(base, key, "batch", seconds)
        single_rps = load(base, key, "single", seconds)
        rss = peak_rss_mb(proc.pid)
    return {
        "batched_ingest_events_per_s": round(batch_rps * 500),
        "single_ingest_requests_per_s": round(single_rps),
        "ingest_peak_rss_mb": round(rss, 1),
    }


def phase_end_to_end(sink: str, seconds: int) -> dict[str, float]:
    with eventrelay(workers=True) as (base, proc, data):
        key = configure(base, data, sink)
        httpx.post(sink + "/reset")
        rps = load(base, key, "batch", seconds)
        # Everything acknowledged during the load must arrive; wrk may have a last partial
        # second, so wait for the count the server reports as queued.
        expected = int(rps * 500 * seconds * 0.98)
        stats = wait_delivered(sink, expected)
        delivered = stats["events"]
        elapsed = stats["last"] - stats["first"]
        rss = peak_rss_mb(proc.pid)
    return {
        "end_to_end_events_per_s": round(delivered / elapsed) if elapsed else 0,
        "end_to_end_ingest_events_per_s": round(rps * 500),
        "end_to_end_delivered": delivered,
        "end_to_end_peak_rss_mb": round(rss, 1),
    }


def phase_latency(sink: str, rate: int, seconds: int) -> dict[str, Any]:
    with eventrelay(workers=True) as (base, proc, data):
        key = configure(base, data, sink, batch_interval_ms=20)
        httpx.post(sink + "/reset", params={"latency": "1"})
        sent = asyncio.run(fixed_rate(base, key, rate, seconds))
        stats = wait_delivered(sink, sent, timeout=60)
        rss = peak_rss_mb(proc.pid)
    return {
        "latency_rate_events_per_s": rate,
        "latency_ms": stats.get("latency_ms"),
        "latency_peak_rss_mb": round(rss, 1),
    }


def phase_celery(sink: str, events: int, redis_url: str) -> dict[str, Any]:
    import redis

    try:
        redis.Redis.from_url(redis_url).flushdb()
    except redis.RedisError as exc:
        return {"celery_error": f"Redis not reachable at {redis_url}: {exc}"}
    env = {"EVENTRELAY_BENCH_REDIS": redis_url, "EVENTRELAY_BENCH_SINK": sink + "/hook"}
    os.environ.update(env)
    from bench.celery_pipeline import post_event

    with process(
        [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "bench.celery_pipeline",
            "worker",
            "--loglevel=WARNING",
            "--concurrency",
            str(os.cpu_count() or 2),
            "--pool",
            "prefork",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        env,
        cwd=ROOT,
    ):
        time.sleep(3)
        httpx.post(sink + "/reset")
        body = json.dumps({"type": "track", "userId": "u", "event": "Celery", "messageId": "m"})
        started = time.monotonic()
        for _ in range(events):
            post_event.delay(body)
        enqueue_s = time.monotonic() - started
        stats = wait_delivered(sink, events, timeout=600)
    elapsed = stats["last"] - stats["first"] if stats["first"] else 0
    return {
        "celery_end_to_end_events_per_s": round(stats["events"] / elapsed) if elapsed else 0,
        "celery_enqueue_events_per_s": round(events / enqueue_s),
        "celery_events": stats["events"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10, help="duration of each load phase")
    parser.add_argument("--latency-rate", type=int, default=5000)
    parser.add_argument("--celery-events", type=int, default=20000)
    parser.add_argument(
        "--redis", default=os.environ.get("EVENTRELAY_BENCH_REDIS", "redis://127.0.0.1:6379/15")
    )
    parser.add_argument("--skip-celery", action="store_true")
    args = parser.parse_args()

    sink_port = free_port()
    sink = f"http://127.0.0.1:{sink_port}"
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_generator": "wrk" if wrk_available() else "python (bench/load.py)",
        }
    }
    with process([PYTHON, str(BENCH / "sink.py"), str(sink_port)]):
        wait_http(sink + "/stats")
        print("phase 1/4: ingest ...", flush=True)
        results.update(phase_ingest(sink, args.seconds))
        print("phase 2/4: end to end ...", flush=True)
        results.update(phase_end_to_end(sink, args.seconds))
        print(f"phase 3/4: latency at {args.latency_rate} events/s ...", flush=True)
        results.update(phase_latency(sink, args.latency_rate, args.seconds))
        if not args.skip_celery:
            print("phase 4/4: Celery + Redis ...", flush=True)
            results.update(phase_celery(sink, args.celery_events, args.redis))

    celery = results.get("celery_end_to_end_events_per_s")
    if celery:
        results["end_to_end_vs_celery"] = round(results["end_to_end_events_per_s"] / celery, 1)
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    latency = results.get("latency_ms") or {}
    print()
    print(f"machine: {results['machine']}")
    print(f"durable batched ingest       {results['batched_ingest_events_per_s']:>10,} events/s")
    print(f"single-event ingest          {results['single_ingest_requests_per_s']:>10,} requests/s")
    print(f"end-to-end to batched webhook{results['end_to_end_events_per_s']:>10,} events/s")
    print(
        f"latency at {args.latency_rate} events/s     p50 {latency.get('p50')} ms"
        f"  p95 {latency.get('p95')} ms  p99 {latency.get('p99')} ms"
    )
    print(
        "peak RSS                     "
        f"{max(results['ingest_peak_rss_mb'], results['end_to_end_peak_rss_mb'], results['latency_peak_rss_mb']):>10} MB"
    )
    if celery:
        print(f"Celery + Redis end-to-end    {celery:>10,} events/s")
        print(f"eventrelay / Celery          {results['end_to_end_vs_celery']:>10}x")
    elif "celery_error" in results:
        print(f"Celery + Redis: {results['celery_error']}")


if __name__ == "__main__":
    main()
