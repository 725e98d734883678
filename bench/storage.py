"""Storage benchmark phase (`python -m bench.run --only storage`), embedded, API only
(`serve --no-workers`, so nothing is delivered and every accepted event stays queued):

1. bytes on disk per queued event with 10 webhook integrations on the source: batched ingest
   (wrk, as the `fanout` phase) for `--seconds`, then the size of the queue's files (the queue
   database with its -wal and -shm files) as they are, and again after a WAL checkpoint
   (TRUNCATE) run from the bench through SQLite, divided by the events accepted (each queued
   for all 10 integrations); and that figure over the mean JSON size of one event as the bench
   sends it (the compact JSON of one element of the `batch` array, see `sent_event_bytes`);
2. the API process's RSS with `--queued-events` events (default 1,000,000) queued behind one
   integration that does not deliver: batched load until the API has accepted that many, then
   its peak (VmHWM) and current RSS.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson

from bench.common import (
    accepted_events,
    batch_load_command,
    configure,
    current_rss_mb,
    eventrelay,
    peak_rss_mb,
    wait_accepted_settle,
    wrk_available,
    wrk_env,
    wrk_event_template,
)
from bench.fanout import LOAD_TIMEOUT_S, ROUTES_SETTLE_S, accepted_rate

DISK_INTEGRATIONS = 10
MAX_LOAD_S = 1800  # the backlog load gives up after this long (it reports what it reached)
# wrk's messageIds are "<random up to 10^9>-<thread>-<counter>": the random part has 9 digits
# for 90 % of draws.
WRK_PREFIX_CHARS = 9 + len("-0-")


# --- the event as sent -----------------------------------------------------------------------


def mean_digits(n: int) -> float:
    """Mean number of decimal digits of 1..n (wrk's per-thread messageId counter)."""
    if n < 1:
        return 1.0
    total, low = 0, 1
    while low <= n:
        high = min(n, low * 10 - 1)
        total += (high - low + 1) * len(str(low))
        low *= 10
    return total / n


def sent_event_bytes(events: int) -> float:
    """Mean size in bytes of one event as the load sends it, for a load of `events` events:
    wrk's template with its messageId filled in, or bench/load.py's events."""
    if wrk_available():
        template = wrk_event_template()
        orjson.loads(template.replace("MSGID", "1"))  # still valid JSON
        return len(template.encode()) - len("MSGID") + WRK_PREFIX_CHARS + mean_digits(events)
    from bench.load import batch_body

    batch = orjson.loads(batch_body())["batch"]
    return sum(len(orjson.dumps(event)) for event in batch) / len(batch)


# --- files -----------------------------------------------------------------------------------


def queue_path(data: Path) -> Path:
    from eventrelay.settings import Settings

    return Settings(data_dir=data).queue_path


def file_sizes(data: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(data.iterdir()) if p.is_file()}


def queue_bytes(data: Path) -> int:
    """The queue database with its -wal and -shm files."""
    name = queue_path(data).name
    return sum(size for file, size in file_sizes(data).items() if file.startswith(name))


def checkpoint(data: Path) -> str:
    """Move the WAL into the database and truncate it, from a connection of our own (the
    server is idle by now); the outcome as SQLite reports it."""
    conn = sqlite3.connect(queue_path(data), timeout=30)
    try:
        busy, log_frames, moved = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        conn.close()
    return "done" if busy == 0 else f"busy ({moved} of {log_frames} WAL frames moved)"


# --- the two measurements --------------------------------------------------------------------


def disk_per_event(sink: str, seconds: int) -> dict[str, Any]:
    with eventrelay(workers=False) as (base, _proc, data):
        key = configure(base, data, sink, integrations=DISK_INTEGRATIONS)
        time.sleep(ROUTES_SETTLE_S)
        ingest = accepted_rate(base, key, seconds)
        events = ingest["accepted_events"]
        as_is = queue_bytes(data)
        outcome = checkpoint(data)
        after = queue_bytes(data)
        files = file_sizes(data)
    per_event = (after if outcome == "done" else as_is) / events if events else 0.0
    event_bytes = sent_event_bytes(events)
    return {
        "integrations": DISK_INTEGRATIONS,
        "queued_events": events,
        "ingest_events_per_s": ingest["events_per_s"],
        "queue_bytes_as_is": as_is,
        "checkpoint": outcome,
        "queue_bytes_after_checkpoint": after,
        "data_dir_files": files,
        "bytes_per_event": round(per_event, 1),
        "sent_event_bytes": round(event_bytes, 1),
        "ratio_to_sent_event": round(per_event / event_bytes, 2),
    }


def load_until(base: str, write_key: str, target: int) -> tuple[int, float]:
    """Batched load until the API has accepted `target` events: (accepted, seconds taken)."""
    before = accepted_events(base)
    started = time.monotonic()
    loader = subprocess.Popen(
        batch_load_command(base, write_key, MAX_LOAD_S, LOAD_TIMEOUT_S),
        env=wrk_env(write_key),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while loader.poll() is None and accepted_events(base) - before < target:
            time.sleep(0.1)
    finally:
        if loader.poll() is None:
            loader.send_signal(signal.SIGINT)  # wrk stops and reports; load.py stops too
            try:
                loader.wait(timeout=30)
            except subprocess.TimeoutExpired:
                loader.kill()
                loader.wait()
    stopped = time.monotonic()
    count, rose = wait_accepted_settle(base)
    return count - before, (rose or stopped) - started


def rss_with_backlog(sink: str, queued_events: int) -> dict[str, Any]:
    with eventrelay(workers=False) as (base, proc, data):
        key = configure(base, data, sink)
        time.sleep(ROUTES_SETTLE_S)
        idle = current_rss_mb(proc.pid)
        events, elapsed = load_until(base, key, queued_events)
        peak, now = peak_rss_mb(proc.pid), current_rss_mb(proc.pid)
        disk = queue_bytes(data)
    return {
        "target_events": queued_events,
        "queued_events": events,
        "load_s": round(elapsed, 1),
        "ingest_events_per_s": round(events / elapsed) if elapsed else 0,
        "rss_before_load_mb": round(idle, 1),
        "peak_rss_mb": round(peak, 1),
        "rss_after_load_mb": round(now, 1),
        "queue_bytes": disk,
    }


def phase_storage(sink: str, seconds: int, queued_events: int) -> dict[str, Any]:
    print(f"  bytes on disk per event, {DISK_INTEGRATIONS} integrations ...", flush=True)
    disk = disk_per_event(sink, seconds)
    print(f"  RSS with {queued_events:,} events queued ...", flush=True)
    return {"disk": disk, "backlog": rss_with_backlog(sink, queued_events)}


def print_storage(storage: dict[str, Any]) -> None:
    disk, backlog = storage["disk"], storage["backlog"]
    print(
        f"storage (embedded, API only): {disk['queued_events']:,} events queued for "
        f"{disk['integrations']} integrations: queue files {disk['queue_bytes_as_is']:,} bytes "
        f"as they are, {disk['queue_bytes_after_checkpoint']:,} after a WAL checkpoint "
        f"({disk['checkpoint']})"
    )
    print(
        f"  bytes on disk per queued event {disk['bytes_per_event']:>10,}  "
        f"= {disk['ratio_to_sent_event']}x the event's JSON as sent ({disk['sent_event_bytes']} B)"
    )
    short = " (short of the target)" if backlog["queued_events"] < backlog["target_events"] else ""
    print(
        f"  RSS with {backlog['queued_events']:,} events queued{short}: peak "
        f"{backlog['peak_rss_mb']} MB, {backlog['rss_after_load_mb']} MB after the load "
        f"({backlog['rss_before_load_mb']} MB before; loaded at "
        f"{backlog['ingest_events_per_s']:,} events/s; queue files {backlog['queue_bytes']:,} B)"
    )
