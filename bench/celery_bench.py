"""Celery + Redis comparison phase (`python -m bench.run --only celery`): the end-to-end
workload of the `end_to_end` phase through plain Celery (bench/celery_pipeline.py) to the same
sink, in two variants:

- batched (the main figure, the same work as eventrelay's): one task per 500-event ingest
  batch (the events of bench/wrk/batch.lua with unique messageIds), the worker posting the
  batch as one JSON array, as eventrelay's batched webhook does; run once per worker pool
  setting of `--celery-pools` (e.g. prefork:2, threads:8) and the best kept;
- per event: one task per event posting it alone (`--celery-events`), on the best setting of
  the batched trials (or `--celery-per-event-pool`).

Both enqueue from one producer reused for every task while the worker runs (delivery starts
with the first flush), and pipelined: kombu's `Producer.batch` (kombu 5.7+) buffers the LPUSHes
of many `apply_async` calls in one Redis pipeline, flushed every `PIPELINE_TASKS` tasks; with
an older kombu each task is one round trip on the reused producer (the results say which).
Delivered events/s is events at the sink over the time between the first and the last
arrival, as for eventrelay; enqueue events/s is how fast the bench's producer put them on Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any

import httpx
import orjson

from bench.common import (
    BATCH,
    PYTHON,
    ROOT,
    process,
    wait_delivered,
    wrk_event_template,
)

READY_TIMEOUT_S = 30
# Tasks per Redis pipeline flush: about 2 MB of messages either way (a batch task's message,
# base64 in kombu's envelope, is ~190 kB).
PIPELINE_TASKS = {True: 10, False: 1000}


def parse_pools(text: str) -> list[tuple[str, int]]:
    """`prefork:2,threads:8` -> [("prefork", 2), ("threads", 8)]."""
    pools = []
    for item in text.split(","):
        pool, _, concurrency = item.strip().partition(":")
        pools.append((pool, int(concurrency or os.cpu_count() or 2)))
    return pools


def batches(events: int) -> Iterator[list[dict[str, Any]]]:
    """`events` events as 500-event batches, each event bench/wrk/batch.lua's, unique ids."""
    template = orjson.loads(wrk_event_template().replace("MSGID", "x"))
    for start in range(0, events, BATCH):
        size = min(BATCH, events - start)
        yield [{**template, "messageId": f"celery-{start + i}"} for i in range(size)]


def worker_args(pool: str, concurrency: int) -> list[str]:
    return [
        PYTHON,
        "-m",
        "celery",
        "-A",
        "bench.celery_pipeline",
        "worker",
        "--loglevel=WARNING",
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
    ]


def wait_ready(app: Any) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not app.control.ping(timeout=0.5):
        if time.monotonic() > deadline:
            raise RuntimeError("the Celery worker did not answer a ping")


def run_variant(
    sink: str, env: dict[str, str], pool: str, concurrency: int, events: int, batched: bool
) -> dict[str, Any]:
    """One worker with this pool setting; enqueue `events` events, wait for them at the sink."""
    import redis

    from bench.celery_pipeline import app, post_batch, post_event

    redis.Redis.from_url(env["EVENTRELAY_BENCH_REDIS"]).flushdb()
    with process(worker_args(pool, concurrency), env, cwd=ROOT):
        wait_ready(app)
        httpx.post(sink + "/reset")
        body = json.dumps({"type": "track", "userId": "u", "event": "Celery", "messageId": "m"})
        started = time.monotonic()
        with app.producer_or_acquire() as producer:
            pipelined = hasattr(producer, "batch")
            with producer.batch(PIPELINE_TASKS[batched]) if pipelined else nullcontext():
                if batched:
                    for batch in batches(events):
                        post_batch.apply_async((batch,), producer=producer)
                else:
                    for _ in range(events):
                        post_event.apply_async((body,), producer=producer)
        enqueue_s = time.monotonic() - started
        stats = wait_delivered(sink, events, timeout=600)
    elapsed = stats["last"] - stats["first"] if stats["first"] else 0
    return {
        "pool": f"{pool}:{concurrency}",
        "enqueue": "Redis pipeline" if pipelined else "one round trip per task",
        "events": stats["events"],
        "end_to_end_events_per_s": round(stats["events"] / elapsed) if elapsed else 0,
        "enqueue_events_per_s": round(events / enqueue_s) if enqueue_s else 0,
        "events_per_request": round(stats["events"] / stats["requests"], 1)
        if stats["requests"]
        else 0,
    }


def phase_celery(sink: str, args: argparse.Namespace) -> dict[str, Any]:
    import redis

    try:
        redis.Redis.from_url(args.redis).ping()
    except redis.RedisError as exc:
        return {"error": f"Redis not reachable at {args.redis}: {exc}"}
    env = {"EVENTRELAY_BENCH_REDIS": args.redis, "EVENTRELAY_BENCH_SINK": sink + "/hook"}
    os.environ.update(env)  # bench.celery_pipeline reads them on import, here as in the worker
    trials = []
    for pool, concurrency in parse_pools(args.celery_pools):
        print(f"  batched, pool {pool}:{concurrency} ...", flush=True)
        trials.append(
            run_variant(sink, env, pool, concurrency, args.celery_batched_events, batched=True)
        )
    best = max(trials, key=lambda t: t["end_to_end_events_per_s"])
    setting = best["pool"] if args.celery_per_event_pool == "best" else args.celery_per_event_pool
    ((pool, concurrency),) = parse_pools(setting)
    print(f"  per event, pool {pool}:{concurrency} ...", flush=True)
    per_event = run_variant(sink, env, pool, concurrency, args.celery_events, batched=False)
    return {"batched": best, "batched_trials": trials, "per_event": per_event}


def ratios(eventrelay_end_to_end: int, celery: dict[str, Any]) -> dict[str, float]:
    """eventrelay's end-to-end events/s over each Celery variant's."""
    out = {}
    for variant in ("batched", "per_event"):
        figure = (celery.get(variant) or {}).get("end_to_end_events_per_s")
        if figure:
            out[f"end_to_end_vs_celery_{variant}"] = round(eventrelay_end_to_end / figure, 1)
    return out


def print_celery(results: dict[str, Any]) -> None:
    celery = results["celery"]
    if "error" in celery:
        print(f"Celery + Redis: {celery['error']}")
        return
    for variant, label in (
        ("batched", "a task per 500-event batch"),
        ("per_event", "a task per event"),
    ):
        run = celery[variant]
        ratio = results.get(f"end_to_end_vs_celery_{variant}")
        versus = f"; eventrelay {ratio}x" if ratio else ""
        print(
            f"Celery + Redis, {label} (pool {run['pool']}): {run['end_to_end_events_per_s']:,} "
            f"events/s end to end, enqueued at {run['enqueue_events_per_s']:,} events/s "
            f"({run['enqueue']}){versus}"
        )
    tried = ", ".join(
        f"{t['pool']} {t['end_to_end_events_per_s']:,}" for t in celery["batched_trials"]
    )
    print(f"  batched, per worker pool setting (events/s): {tried}")
