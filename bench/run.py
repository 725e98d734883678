"""eventrelay benchmark: `make bench`. Prints its figures; asserts nothing.

Phases (each on a fresh data directory, eventrelay as a real `eventrelay serve` process):
 1. durable batched ingest (events/s) and single-event ingest (requests/s), API only
    (`--no-workers`) so the figures are ingest alone; events are durable in the queue on 200;
 2. end-to-end: batched ingest while delivering to a batched webhook (events/s delivered);
 3. ingest-to-delivery latency (p50/p95/p99) at a fixed 5,000 events/s;
 4. the same end-to-end workload through plain Celery + Redis (one task per event posting to
    the same sink), and the ratio;
 5. scale-out (bench/scaleout.py): the end-to-end workload on PostgreSQL + NATS JetStream with
    one `serve --no-workers` API process and 1, then 2 `eventrelay worker` processes (skipped
    with a reason when PostgreSQL or nats-server is absent);
 6. warehouses (bench/warehouses.py): events/s into the BigQuery and Snowflake stand-ins.

 7. rules (bench/rules.py): the cost of routing rules per event (compiled trigger + filters,
    mapping, a JavaScript function in the sandbox).

`--only PHASE[,PHASE]` runs a subset (ingest, end_to_end, latency, celery, scaleout, loads,
warehouses, rules), e.g.
`python -m bench.run --only end_to_end,scaleout --seconds 8`.

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
    """Peak resident memory of the process plus its children (`serve --processes N`)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return float("nan")
    match = re.search(r"VmHWM:\s+(\d+) kB", text)
    own = int(match.group(1)) / 1024 if match else float("nan")
    return own + sum(peak_rss_mb(int(child)) for child in children)


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
        "EVENTRELAY_PROCESSES": os.environ.get("EVENTRELAY_PROCESSES", "1"),
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


PHASES = (
    "ingest",
    "end_to_end",
    "latency",
    "celery",
    "scaleout",
    "loads",
    "warehouses",
    "rules",
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10, help="duration of each load phase")
    parser.add_argument("--latency-rate", type=int, default=5000)
    parser.add_argument("--celery-events", type=int, default=20000)
    parser.add_argument(
        "--redis", default=os.environ.get("EVENTRELAY_BENCH_REDIS", "redis://127.0.0.1:6379/15")
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="embedded phases: `serve --processes N` (HTTP processes sharing the port)",
    )
    parser.add_argument("--skip-celery", action="store_true")
    parser.add_argument("--skip-scaleout", action="store_true")
    parser.add_argument(
        "--warehouse-events", type=int, default=10_000, help="events loaded into each warehouse"
    )
    parser.add_argument(
        "--only",
        type=lambda text: [p.strip() for p in text.split(",") if p.strip()],
        default=None,
        metavar="PHASE[,PHASE]",
        help=f"run only these phases ({', '.join(PHASES)}); their figures are merged into "
        "bench/results/latest.json",
    )
    args = parser.parse_args()
    unknown = set(args.only or ()) - set(PHASES)
    if unknown:
        parser.error(f"unknown phase(s) {', '.join(sorted(unknown))}; choose from {PHASES}")
    return args


def selected_phases(args: argparse.Namespace) -> list[str]:
    if args.only:
        return [p for p in PHASES if p in args.only]
    skipped = {"celery"} if args.skip_celery else set()
    skipped |= {"scaleout"} if args.skip_scaleout else set()
    return [p for p in PHASES if p not in skipped]


def run_phases(args: argparse.Namespace, phases: list[str], results: dict[str, Any]) -> None:
    from bench.scaleout import phase_scaleout

    os.environ["EVENTRELAY_PROCESSES"] = str(args.processes)
    results["processes"] = args.processes

    sink_port = free_port()
    sink = f"http://127.0.0.1:{sink_port}"
    titles = {
        "ingest": "ingest",
        "end_to_end": "end to end",
        "latency": f"latency at {args.latency_rate} events/s",
        "celery": "Celery + Redis",
        "scaleout": "scale-out (PostgreSQL + NATS JetStream, 1 API + 1/2 workers)",
        "loads": "file-loading destinations (S3, Redshift; 20 full buffers)",
        "warehouses": "warehouse loads (BigQuery and Snowflake stand-ins)",
        "rules": "routing rules per event (compiled FQL, mapping, JavaScript function)",
    }
    with process([PYTHON, str(BENCH / "sink.py"), str(sink_port)]):
        wait_http(sink + "/stats")
        for number, phase in enumerate(phases, 1):
            print(f"phase {number}/{len(phases)}: {titles[phase]} ...", flush=True)
            if phase == "ingest":
                results.update(phase_ingest(sink, args.seconds))
            elif phase == "end_to_end":
                results.update(phase_end_to_end(sink, args.seconds))
            elif phase == "latency":
                results.update(phase_latency(sink, args.latency_rate, args.seconds))
            elif phase == "celery":
                results.update(phase_celery(sink, args.celery_events, args.redis))
            elif phase == "scaleout":
                results["scaleout"] = phase_scaleout(sink, args.seconds)
            elif phase == "loads":
                from bench.loads import phase_loads

                results.update(phase_loads())
            elif phase == "warehouses":
                from bench.warehouses import phase_warehouses

                results.update(phase_warehouses(args.warehouse_events))
            elif phase == "rules":
                from bench.rules import phase_rules

                results.update(phase_rules())


def save(results: dict[str, Any], merge: bool) -> None:
    """bench/results/latest.json; a partial run (--only) updates the figures it measured."""
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    path = out / "latest.json"
    if merge and path.exists():
        results = {**json.loads(path.read_text()), **results}
    path.write_text(json.dumps(results, indent=2) + "\n")


def print_summary(args: argparse.Namespace, results: dict[str, Any]) -> None:
    from bench.scaleout import print_report

    print()
    print(f"machine: {results['machine']}")
    if "batched_ingest_events_per_s" in results:
        print(
            f"durable batched ingest       {results['batched_ingest_events_per_s']:>10,} events/s"
        )
        print(
            f"single-event ingest          {results['single_ingest_requests_per_s']:>10,} requests/s"
        )
    if "end_to_end_events_per_s" in results:
        print(f"end-to-end to batched webhook{results['end_to_end_events_per_s']:>10,} events/s")
    if "latency_ms" in results:
        latency = results.get("latency_ms") or {}
        print(
            f"latency at {args.latency_rate} events/s     p50 {latency.get('p50')} ms"
            f"  p95 {latency.get('p95')} ms  p99 {latency.get('p99')} ms"
        )
    rss = [
        v for k, v in results.items() if k.endswith("_peak_rss_mb") and not k.startswith("buffers")
    ]
    if rss:
        print(f"peak RSS                     {max(rss):>10} MB")
    celery = results.get("celery_end_to_end_events_per_s")
    if celery:
        print(f"Celery + Redis end-to-end    {celery:>10,} events/s")
        if "end_to_end_vs_celery" in results:
            print(f"eventrelay / Celery          {results['end_to_end_vs_celery']:>10}x")
    elif "celery_error" in results:
        print(f"Celery + Redis: {results['celery_error']}")
    if "scaleout" in results:
        print_report(results)
    from bench.loads import print_loads

    print_loads(results)
    if "warehouse_events" in results:
        from bench.warehouses import print_report as print_warehouses

        print_warehouses(results)
    from bench.rules import print_rules

    print_rules(results)


def main() -> None:
    args = parse_args()
    # A plain `kill` runs the same clean-up as Ctrl-C (every phase stops what it started).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_generator": "wrk" if wrk_available() else "python (bench/load.py)",
        }
    }
    run_phases(args, selected_phases(args), results)
    celery = results.get("celery_end_to_end_events_per_s")
    if celery and "end_to_end_events_per_s" in results:
        results["end_to_end_vs_celery"] = round(results["end_to_end_events_per_s"] / celery, 1)
    save(results, merge=bool(args.only))
    print_summary(args, results)


if __name__ == "__main__":
    main()
