"""A fast webhook receiver for benchmarks (separate process): counts events and, in latency
mode, records ingest-to-delivery latency (arrival time - the event's receivedAt)."""

from __future__ import annotations

import sys
import time
from datetime import datetime

import orjson
from aiohttp import web

state: dict[str, object] = {}


def reset(latency: bool = False) -> None:
    state.update(requests=0, events=0, first=None, last=None, latency=latency, samples=[])


async def hook(request: web.Request) -> web.Response:
    body = await request.read()
    now = time.time()
    events = body.count(b'"messageId"')
    state["requests"] = int(state["requests"]) + 1  # type: ignore[call-overload]
    state["events"] = int(state["events"]) + events  # type: ignore[call-overload]
    state["first"] = state["first"] or now
    state["last"] = now
    if state["latency"]:
        data = orjson.loads(body)
        samples: list[float] = state["samples"]  # type: ignore[assignment]
        for event in data if isinstance(data, list) else [data]:
            received = datetime.fromisoformat(event["receivedAt"].replace("Z", "+00:00"))
            samples.append((now - received.timestamp()) * 1000)
    return web.Response(text="ok")


async def stats(_request: web.Request) -> web.Response:
    out = {k: v for k, v in state.items() if k != "samples"}
    samples = sorted(state["samples"])  # type: ignore[call-overload]
    if samples:

        def pct(p: float) -> float:
            return round(samples[min(len(samples) - 1, int(p * len(samples)))], 1)

        out["latency_ms"] = {
            "p50": pct(0.50),
            "p95": pct(0.95),
            "p99": pct(0.99),
            "n": len(samples),
        }
    return web.json_response(out)


async def do_reset(request: web.Request) -> web.Response:
    reset(latency=request.query.get("latency") == "1")
    return web.json_response({"ok": True})


def main() -> None:
    reset()
    app = web.Application(client_max_size=100 * 1024 * 1024)
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", do_reset)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
