"""The comparison pipeline: plain Celery + Redis posting events to the bench sink.

Two tasks: `post_batch` takes one 500-event ingest batch and posts it as one JSON array (as
eventrelay's batched webhook does; the sink counts the events in it), `post_event` posts one
event per task. Run by bench/celery_bench.py: `celery -A bench.celery_pipeline worker`. The
broker is the machine's Redis (EVENTRELAY_BENCH_REDIS, default redis://127.0.0.1:6379/15).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import orjson
import requests
from celery import Celery  # type: ignore[import-untyped]

BROKER = os.environ.get("EVENTRELAY_BENCH_REDIS", "redis://127.0.0.1:6379/15")
SINK = os.environ.get("EVENTRELAY_BENCH_SINK", "http://127.0.0.1:9911/hook")

app = Celery("bench", broker=BROKER)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_acks_late=True,  # at-least-once, like eventrelay
    worker_prefetch_multiplier=16,
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
)
_HEADERS = {"Content-Type": "application/json"}
_local = (
    threading.local()
)  # a keep-alive session per thread (the `threads` pool shares one process)


def _session() -> requests.Session:
    session: requests.Session | None = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
        # No proxy settings looked up in the environment on every request (~30 % of a small
        # post's time here): the sink is local.
        session.trust_env = False
    return session


@app.task(  # type: ignore[untyped-decorator]
    name="post_event", autoretry_for=(requests.RequestException,), retry_backoff=True
)
def post_event(event_json: str) -> None:
    response = _session().post(SINK, data=event_json, headers=_HEADERS, timeout=15)
    response.raise_for_status()


@app.task(  # type: ignore[untyped-decorator]
    name="post_batch", autoretry_for=(requests.RequestException,), retry_backoff=True
)
def post_batch(events: list[dict[str, Any]]) -> None:
    response = _session().post(SINK, data=orjson.dumps(events), headers=_HEADERS, timeout=30)
    response.raise_for_status()
