"""Fan-out benchmark phase (`python -m bench.run --only fanout`): batched ingest (wrk, 500-event
batches, as the `ingest` phase) into a source with 1, 10 and 50 batched webhook integrations,
API only (`serve --no-workers`, so the figure is ingest alone), in the embedded shape (SQLite)
and the scale-out shape (PostgreSQL + its own nats-server, bench/scaleout.py's machinery).

Every cell runs on a fresh server (data directory, or database + NATS server). The rate is the
API's own count of accepted events (`eventrelay_ingest_events_total`, raised once the queue has
stored a request's events) from the start of the load until the requests still in flight when
it ends are answered: with many integrations a 500-event request in scale-out can take longer
than a short load lasts, and wrk's Requests/sec would then count only the requests completed
inside its window. wrk's own figure is kept beside it for comparison with the `ingest` phase.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import (
    BATCH,
    accepted_events,
    batch_load_command,
    configure,
    eventrelay,
    wait_accepted_settle,
    wrk_available,
    wrk_env,
)

INTEGRATION_COUNTS = (1, 10, 50)
# wrk's per-request timeout: a 500-event request to 50 integrations in scale-out takes seconds.
LOAD_TIMEOUT_S = 120
# The routing directory reloads on the config bus (LISTEN/NOTIFY in scale-out), not inside the
# request that created the integration: give it a moment before the load.
ROUTES_SETTLE_S = 1.0


def accepted_rate(base: str, write_key: str, seconds: int) -> dict[str, Any]:
    """Batched load for `seconds`; accepted events/s from the API's counter (see above)."""
    before = accepted_events(base)
    started = time.monotonic()
    out = subprocess.run(
        batch_load_command(base, write_key, seconds, LOAD_TIMEOUT_S),
        capture_output=True,
        text=True,
        env=wrk_env(write_key),
        check=True,
    ).stdout
    load_ended = time.monotonic()
    if "Non-2xx" in out:
        print(out, file=sys.stderr)
        raise RuntimeError("the load saw non-2xx responses")
    count, rose = wait_accepted_settle(base, quiet=settle_quiet(base, before, started, out))
    last = rose or load_ended
    events = count - before
    result: dict[str, Any] = {
        "events_per_s": round(events / (last - started)),
        "accepted_events": events,
        "answered_after_load_s": round(last - load_ended, 1),
    }
    match = re.search(r"Requests/sec:\s+([\d.]+)", out) if wrk_available() else None
    if match:
        result["wrk_events_per_s"] = round(float(match.group(1)) * BATCH)
    return result


def wrk_max_latency_s(out: str) -> float | None:
    """The slowest answered request of a wrk run, or None when none was answered."""
    if not re.search(r"^\s*[1-9]\d* requests in", out, re.MULTILINE):
        return None
    match = re.search(r"Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m)\b", out)
    if not match:
        return None
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[match.group(2)]
    return float(match.group(1)) * scale


def settle_quiet(base: str, before: int, started: float, out: str) -> float:
    """How long the accepted count must stand still before the requests in flight when the
    load ended count as answered: 1.5x the slowest request seen (the Python client waits for
    its own requests). When wrk saw no answer at all, the first rise of the count tells."""
    if not wrk_available():
        return 1.0
    latency = wrk_max_latency_s(out)
    if latency is None:
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        while accepted_events(base) == before and time.monotonic() < deadline:
            time.sleep(0.1)
        latency = time.monotonic() - started
    return min(60.0, max(1.0, 1.5 * latency))


@contextmanager
def embedded() -> Iterator[tuple[str, Path]]:
    with eventrelay(workers=False) as (base, _proc, data):
        yield base, data


@contextmanager
def scaleout() -> Iterator[tuple[str, Path]]:
    from bench.scaleout import cluster

    with cluster() as c:
        yield c.base, c.data


def measure(shape: str, sink: str, seconds: int, integrations: int) -> dict[str, Any]:
    server = embedded() if shape == "embedded" else scaleout()
    with server as (base, data):
        key = configure(base, data, sink, integrations=integrations)
        time.sleep(ROUTES_SETTLE_S)
        return {"integrations": integrations, **accepted_rate(base, key, seconds)}


def with_share(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each run's rate as a percentage of the 1-integration run's."""
    one = runs[0]["events_per_s"] if runs and runs[0]["integrations"] == 1 else 0
    for run in runs:
        run["percent_of_1"] = round(run["events_per_s"] / one * 100, 1) if one else None
    return runs


def phase_fanout(sink: str, seconds: int, with_scaleout: bool = True) -> dict[str, Any]:
    result: dict[str, Any] = {"integration_counts": list(INTEGRATION_COUNTS), "seconds": seconds}
    runs = []
    for count in INTEGRATION_COUNTS:
        print(f"  embedded, {count} integration(s) ...", flush=True)
        runs.append(measure("embedded", sink, seconds, count))
    result["embedded"] = with_share(runs)
    if not with_scaleout:
        result["scaleout"] = {"skipped": "--skip-scaleout"}
        return result
    from bench.scaleout import missing_prerequisite, nats_version

    reason = missing_prerequisite()
    if reason:
        result["scaleout"] = {"skipped": reason}
        return result
    runs = []
    for count in INTEGRATION_COUNTS:
        print(f"  scale-out, {count} integration(s) ...", flush=True)
        runs.append(measure("scaleout", sink, seconds, count))
    result["scaleout"] = with_share(runs)
    result["scaleout_shape"] = f"PostgreSQL + NATS JetStream {nats_version()}"
    return result


def _cells(run: dict[str, Any] | None) -> str:
    if run is None:
        return f"{'-':>20}{'-':>10}"
    share = run.get("percent_of_1")
    return f"{run['events_per_s']:>20,}{(f'{share}%' if share is not None else '-'):>10}"


def print_fanout(fanout: dict[str, Any]) -> None:
    embedded_runs = {r["integrations"]: r for r in fanout.get("embedded", [])}
    scaleout = fanout.get("scaleout")
    scaleout_runs = {r["integrations"]: r for r in scaleout} if isinstance(scaleout, list) else {}
    print(
        "fan-out: batched ingest, API only (serve --no-workers), accepted events/s "
        f"(load {fanout['seconds']} s per cell)"
    )
    print(f"  {'integrations':>12}{'embedded events/s':>20}{'% of 1':>10}", end="")
    print(f"{'scale-out events/s':>20}{'% of 1':>10}")
    for count in fanout["integration_counts"]:
        print(f"  {count:>12}{_cells(embedded_runs.get(count))}{_cells(scaleout_runs.get(count))}")
    if isinstance(scaleout, dict) and "skipped" in scaleout:
        print(f"  scale-out: skipped: {scaleout['skipped']}")
    slow = [
        f"{shape} {count}: {run['answered_after_load_s']} s"
        for shape, runs in (("embedded", embedded_runs), ("scale-out", scaleout_runs))
        for count, run in runs.items()
        if run["answered_after_load_s"] >= 1
    ]
    if slow:
        print(f"  requests in flight were answered after the load ended: {', '.join(slow)}")
