"""eventrelay benchmark: `make bench`. Prints its figures; asserts nothing.

Phases (each on a fresh data directory, eventrelay as a real `eventrelay serve` process):
 1. durable batched ingest (events/s) and single-event ingest (requests/s), API only
    (`--no-workers`) so the figures are ingest alone; events are durable in the queue on 200;
 2. end-to-end: batched ingest while delivering to a batched webhook (events/s delivered);
 3. ingest-to-delivery latency (p50/p95/p99) at a fixed 5,000 events/s;
 4. the same end-to-end workload through plain Celery + Redis (bench/celery_bench.py): a task
    per 500-event batch (the main ratio) and a task per event, on the same sink;
 5. fan-out (bench/fanout.py): batched ingest into a source with 1, 10 and 50 webhook
    integrations, API only, embedded and scale-out;
 6. storage (bench/storage.py): bytes on disk per queued event with 10 integrations, and the
    API's RSS with `--queued-events` events queued behind an integration that does not deliver;
 7. scale-out (bench/scaleout.py): the end-to-end workload on PostgreSQL + NATS JetStream with
    one `serve --no-workers` API process and 1, then 2 `eventrelay worker` processes (skipped
    with a reason when PostgreSQL or nats-server is absent);
 8. file-loading destinations (bench/loads.py);
 9. warehouses (bench/warehouses.py): events/s into the BigQuery and Snowflake stand-ins;
10. rules (bench/rules.py): the cost of routing rules per event (compiled trigger + filters,
    mapping, a JavaScript function in the sandbox).

`--only PHASE[,PHASE]` runs a subset (ingest, end_to_end, latency, celery, fanout, storage,
scaleout, loads, warehouses, rules), e.g.
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
import signal
import sys
import time
from typing import Any

import httpx

from bench.common import (
    BENCH,
    PYTHON,
    configure,
    eventrelay,
    free_port,
    load,
    peak_rss_mb,
    process,
    wait_delivered,
    wait_http,
    wrk_available,
)


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


PHASES = (
    "ingest",
    "end_to_end",
    "latency",
    "celery",
    "fanout",
    "storage",
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
    parser.add_argument(
        "--celery-events", type=int, default=20000, help="Celery, one task per event: events"
    )
    parser.add_argument(
        "--celery-batched-events",
        type=int,
        default=500_000,
        help="Celery, one task per 500-event batch: events (per worker setting tried)",
    )
    parser.add_argument(
        "--celery-pools",
        default="prefork:2,prefork:4,threads:4,threads:8",
        metavar="POOL:N[,POOL:N]",
        help="Celery worker pool settings tried for the batched variant; the best is kept",
    )
    parser.add_argument(
        "--celery-per-event-pool",
        default="best",
        metavar="POOL:N",
        help="Celery worker pool setting of the per-event variant (default: the best of the "
        "batched trials)",
    )
    parser.add_argument(
        "--queued-events",
        type=int,
        default=1_000_000,
        help="storage phase: events queued behind an integration that does not deliver",
    )
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
    # --skip-scaleout also skips the scale-out half of the fan-out phase (bench/fanout.py).
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
        "celery": "Celery + Redis (a task per 500-event batch, then a task per event)",
        "fanout": "fan-out: batched ingest with 1, 10 and 50 integrations (API only)",
        "storage": f"storage: bytes per queued event, RSS with {args.queued_events:,} queued",
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
                from bench.celery_bench import phase_celery

                results["celery"] = phase_celery(sink, args)
            elif phase == "fanout":
                from bench.fanout import phase_fanout

                results["fanout"] = phase_fanout(sink, args.seconds, not args.skip_scaleout)
            elif phase == "storage":
                from bench.storage import phase_storage

                results["storage"] = phase_storage(sink, args.seconds, args.queued_events)
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
    if "celery" in results:
        from bench.celery_bench import print_celery

        print_celery(results)
    if "fanout" in results:
        from bench.fanout import print_fanout

        print_fanout(results["fanout"])
    if "storage" in results:
        from bench.storage import print_storage

        print_storage(results["storage"])
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
    if "celery" in results and "end_to_end_events_per_s" in results:
        from bench.celery_bench import ratios

        results.update(ratios(results["end_to_end_events_per_s"], results["celery"]))
    save(results, merge=bool(args.only))
    print_summary(args, results)


if __name__ == "__main__":
    main()
